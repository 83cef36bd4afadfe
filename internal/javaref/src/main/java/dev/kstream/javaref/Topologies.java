package dev.kstream.javaref;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams side of the differential tests' topology registry. Each
 * topology here has a twin of the same name in differential_test.go
 * (kstream). Keys are strings; values are strings or longs, as declared per
 * topic. Windowed results are re-keyed to "key@start/end" before their sink
 * on both sides.
 *
 * <p>Conventions shared with the Go side: joiners give "left+right", with
 * "null" for a missing side (Java's string concatenation of null); reducers
 * concatenate with ","; sources are "in" (or "left"/"right", "table",
 * "global"), sinks "out" (or "out-*").
 */
final class Topologies {
  private Topologies() {}

  /** A topic's value type. */
  enum Type {
    STRING(Serdes.String()),
    LONG(Serdes.Long());

    final Serde<?> serde;

    Type(Serde<?> serde) {
      this.serde = serde;
    }

    @SuppressWarnings("unchecked")
    <T> Serde<T> serde() {
      return (Serde<T>) serde;
    }
  }

  /** One registered topology: its input and output topics and its builder. */
  static final class Topo {
    final Map<String, Type> inputs;
    final Map<String, Type> outputs;
    final Consumer<StreamsBuilder> build;

    Topo(Map<String, Type> inputs, Map<String, Type> outputs, Consumer<StreamsBuilder> build) {
      this.inputs = inputs;
      this.outputs = outputs;
      this.build = build;
    }
  }

  static final Map<String, Topo> REGISTRY = new TreeMap<>();

  private static final Serde<String> S = Serdes.String();
  private static final Serde<Long> L = Serdes.Long();

  /** Topic lists are written "in:string,table:long". */
  private static Map<String, Type> topics(String spec) {
    Map<String, Type> m = new LinkedHashMap<>();
    for (String part : spec.split(",")) {
      String[] kv = part.trim().split(":");
      m.put(kv[0], Type.valueOf(kv[1].toUpperCase()));
    }
    return m;
  }

  private static void reg(String name, String inputs, String outputs, Consumer<StreamsBuilder> build) {
    if (REGISTRY.put(name, new Topo(topics(inputs), topics(outputs), build)) != null) {
      throw new IllegalStateException("topology " + name + " registered twice");
    }
  }

  private static KStream<String, String> in(StreamsBuilder b, String topic) {
    return b.stream(topic, Consumed.with(S, S));
  }

  private static KStream<String, Long> inLong(StreamsBuilder b, String topic) {
    return b.stream(topic, Consumed.with(S, L));
  }

  private static KTable<String, String> table(StreamsBuilder b, String topic, String store) {
    return b.table(topic, Consumed.with(S, S),
        Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(store).withKeySerde(S).withValueSerde(S));
  }

  private static <V> Materialized<String, V, KeyValueStore<Bytes, byte[]>> kv(String store, Serde<V> vs) {
    return Materialized.<String, V, KeyValueStore<Bytes, byte[]>>as(store).withKeySerde(S).withValueSerde(vs);
  }

  private static <V> Materialized<String, V, WindowStore<Bytes, byte[]>> win(String store, Serde<V> vs) {
    return Materialized.<String, V, WindowStore<Bytes, byte[]>>as(store).withKeySerde(S).withValueSerde(vs);
  }

  private static <V> Materialized<String, V, SessionStore<Bytes, byte[]>> ses(String store, Serde<V> vs) {
    return Materialized.<String, V, SessionStore<Bytes, byte[]>>as(store).withKeySerde(S).withValueSerde(vs);
  }

  /** Writes a windowed table's updates to topic, keyed "key@start/end". */
  private static <V> void windowedOut(KTable<Windowed<String>, V> t, String topic, Serde<V> vs) {
    t.toStream((wk, v) -> wk.key() + "@" + wk.window().start() + "/" + wk.window().end())
        .to(topic, Produced.with(S, vs));
  }

  private static String join(String v, String vo) {
    return v + "+" + vo;
  }

  private static Duration ms(long n) {
    return Duration.ofMillis(n);
  }

  private static List<String> words(String v) {
    if (v == null) {
      return Collections.emptyList();
    }
    List<String> out = new ArrayList<>();
    for (String w : v.split(" ")) {
      if (!w.isEmpty()) {
        out.add(w);
      }
    }
    return out;
  }

  /** The first letter of a value, or null for a tombstone. */
  private static String first(String v) {
    return v == null ? null : v.substring(0, 1);
  }

  /** The foreign key of a "fk:payload" value; "-" and "" mean none. */
  private static String fk(String v) {
    if (v == null) {
      return null;
    }
    String f = v.split(":", 2)[0];
    return f.isEmpty() || f.equals("-") ? null : f;
  }

  static {
    // ---------------------------------------------------------------- stateless

    reg("stream-filter", "in:string", "out:string", b ->
        in(b, "in").filter((k, v) -> v != null && v.startsWith("a")).to("out", Produced.with(S, S)));

    reg("stream-branch", "in:string", "out-a:string,out-b:string,out-rest:string", b ->
        in(b, "in").split()
            .branch((k, v) -> v != null && v.startsWith("a"), Branched.withConsumer(s -> s.to("out-a", Produced.with(S, S))))
            .branch((k, v) -> v != null && v.startsWith("b"), Branched.withConsumer(s -> s.to("out-b", Produced.with(S, S))))
            .defaultBranch(Branched.withConsumer(s -> s.to("out-rest", Produced.with(S, S)))));

    reg("stream-map-values", "in:string", "out:string", b ->
        in(b, "in").mapValues(v -> v == null ? null : v.toUpperCase()).to("out", Produced.with(S, S)));

    reg("stream-flat-map-values", "in:string", "out:string", b ->
        in(b, "in").flatMapValues(Topologies::words).to("out", Produced.with(S, S)));

    reg("stream-select-key", "in:string", "out:string", b ->
        in(b, "in").selectKey((k, v) -> (k == null ? "" : k) + "!").to("out", Produced.with(S, S)));

    reg("stream-map", "in:string", "out:string", b ->
        in(b, "in").map((k, v) -> KeyValue.pair((k == null ? "" : k).toUpperCase(), v == null ? null : v + "!"))
            .to("out", Produced.with(S, S)));

    reg("stream-flat-map", "in:string", "out:string", b ->
        in(b, "in").flatMap((k, v) -> {
          List<KeyValue<String, String>> out = new ArrayList<>();
          for (String w : words(v)) {
            out.add(KeyValue.pair(w, k == null ? "" : k));
          }
          return out;
        }).to("out", Produced.with(S, S)));

    reg("stream-merge", "left:string,right:string", "out:string", b ->
        in(b, "left").merge(in(b, "right")).to("out", Produced.with(S, S)));

    // ------------------------------------------------------------- aggregations

    reg("agg-count", "in:string", "out:long", b ->
        in(b, "in").groupByKey().count(kv("counts", L)).toStream().to("out", Produced.with(S, L)));

    reg("agg-reduce", "in:string", "out:string", b ->
        in(b, "in").groupByKey().reduce((a, v) -> a + "," + v, kv("reduced", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("agg-aggregate-sum", "in:long", "out:long", b ->
        inLong(b, "in").groupByKey(Grouped.with(S, L))
            .aggregate(() -> 0L, (k, v, a) -> a + v, kv("sums", L))
            .toStream().to("out", Produced.with(S, L)));

    reg("agg-group-by-count", "in:string", "out:long", b ->
        in(b, "in").groupBy((k, v) -> first(v), Grouped.with("by-letter", S, S))
            .count(kv("letter-counts", L)).toStream().to("out", Produced.with(S, L)));

    reg("agg-select-key-count", "in:string", "out:long", b ->
        in(b, "in").selectKey((k, v) -> (k == null ? "" : k).toUpperCase())
            .groupByKey(Grouped.with("upper", S, S))
            .count(kv("upper-counts", L)).toStream().to("out", Produced.with(S, L)));

    reg("agg-map-reduce-sum", "in:string", "out:long", b ->
        in(b, "in").map((k, v) -> KeyValue.pair(v, 1L))
            .groupByKey(Grouped.with("words", S, L))
            .reduce(Long::sum, kv("word-sums", L)).toStream().to("out", Produced.with(S, L)));

    reg("agg-shared-grouping", "in:string", "out-count:long,out-reduce:string", b -> {
      KGroupedStream<String, String> g = in(b, "in").groupBy((k, v) -> first(v), Grouped.with("g", S, S));
      g.count(kv("g-count", L)).toStream().to("out-count", Produced.with(S, L));
      g.reduce((a, v) -> a + "," + v, kv("g-reduce", S)).toStream().to("out-reduce", Produced.with(S, S));
    });

    // processValues: values upper-cased one millisecond later, "skip" dropped,
    // "dup" forwarded twice, tombstones passed on; then a count per key,
    // which needs no repartition since keys cannot change.
    reg("proc-values-count", "in:string", "out:string,counts:long", b -> {
      KStream<String, String> s = in(b, "in").processValues(() -> new FixedKeyProcessor<String, String, String>() {
        private FixedKeyProcessorContext<String, String> ctx;

        @Override
        public void init(FixedKeyProcessorContext<String, String> context) {
          ctx = context;
        }

        @Override
        public void process(FixedKeyRecord<String, String> r) {
          if (r.value() == null) {
            ctx.forward(r);
            return;
          }
          if (r.value().equals("skip")) {
            return;
          }
          ctx.forward(r.withValue(r.value().toUpperCase()).withTimestamp(r.timestamp() + 1));
          if (r.value().equals("dup")) {
            ctx.forward(r.withValue("DUP2"));
          }
        }
      });
      s.to("out", Produced.with(S, S));
      s.groupByKey(Grouped.with("pv", S, S)).count(kv("pv-counts", L)).toStream().to("counts", Produced.with(S, L));
    });

    // A topic per record: values starting with "a" to out-a, the rest
    // (tombstones included) to out-b.
    reg("sink-func", "in:string", "out-a:string,out-b:string", b ->
        in(b, "in").to((k, v, rc) -> v != null && v.startsWith("a") ? "out-a" : "out-b", Produced.with(S, S)));

    // ------------------------------------------------------------------- tables

    reg("table-source", "in:string", "out:string", b ->
        table(b, "in", "t").toStream().to("out", Produced.with(S, S)));

    reg("table-to-table", "in:string", "out:string", b ->
        in(b, "in").toTable(kv("tt", S)).toStream().to("out", Produced.with(S, S)));

    reg("table-filter", "in:string", "out:string", b ->
        table(b, "in", "t").filter((k, v) -> v.startsWith("a")).toStream().to("out", Produced.with(S, S)));

    reg("table-map-values", "in:string", "out:string", b ->
        table(b, "in", "t").mapValues(v -> v.toUpperCase()).toStream().to("out", Produced.with(S, S)));

    reg("table-group-by-count", "in:string", "out:long", b ->
        table(b, "in", "t").groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with("regroup", S, S))
            .count(kv("group-counts", L)).toStream().to("out", Produced.with(S, L)));

    reg("table-group-by-reduce", "in:long", "out:long", b ->
        b.table("in", Consumed.with(S, L), kv("t", L))
            .groupBy((k, v) -> KeyValue.pair(k.substring(0, 1), v), Grouped.with("regroup", S, L))
            .reduce(Long::sum, (a, v) -> a - v, kv("group-sums", L))
            .toStream().to("out", Produced.with(S, L)));

    reg("table-group-by-aggregate", "in:string", "out:string", b ->
        table(b, "in", "t").groupBy((k, v) -> KeyValue.pair(first(v), k + "=" + v), Grouped.with("regroup", S, S))
            .aggregate(() -> "", (k, v, a) -> a + "+" + v, (k, v, a) -> a + "-" + v, kv("group-aggs", S))
            .toStream().to("out", Produced.with(S, S)));

    // Two regroupings in a row: counts per value, then the total of the counts.
    reg("table-regroup-chain", "in:string", "out-counts:long,out:long", b -> {
      KTable<String, Long> counts = table(b, "in", "t")
          .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with("regroup", S, S)).count(kv("group-counts", L));
      counts.toStream().to("out-counts", Produced.with(S, L));
      counts.groupBy((k, v) -> KeyValue.pair("total", v), Grouped.with("total", S, L))
          .reduce(Long::sum, (a, v) -> a - v, kv("totals", L))
          .toStream().to("out", Produced.with(S, L));
    });

    // ------------------------------------------------------ table-table joins

    reg("tt-join", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").join(table(b, "right", "rt"), Topologies::join, kv("j", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("tt-left-join", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").leftJoin(table(b, "right", "rt"), Topologies::join, kv("j", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("tt-outer-join", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").outerJoin(table(b, "right", "rt"), Topologies::join, kv("j", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("tt-join-filtered", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").filter((k, v) -> !v.startsWith("x"))
            .join(table(b, "right", "rt"), Topologies::join, kv("j", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("tt-join-group-by-count", "left:string,right:string", "out:long", b ->
        table(b, "left", "lt").join(table(b, "right", "rt"), Topologies::join, kv("j", S))
            .groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with("regroup", S, S))
            .count(kv("join-counts", L)).toStream().to("out", Produced.with(S, L)));

    reg("tt-fk-join", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").join(table(b, "right", "rt"), (String k, String v) -> fk(v), Topologies::join, kv("fkj", S))
            .toStream().to("out", Produced.with(S, S)));

    reg("tt-fk-left-join", "left:string,right:string", "out:string", b ->
        table(b, "left", "lt").leftJoin(table(b, "right", "rt"), (String k, String v) -> fk(v), Topologies::join, kv("fkj", S))
            .toStream().to("out", Produced.with(S, S)));

    // ------------------------------------------------------------------ windows

    reg("win-tumbling-count", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(ms(10)))
            .count(win("wc", L)), "out", L));

    // Event time read from the value "name@ts" (tombstones keep the record's
    // timestamp); the records' own timestamps are far later.
    reg("ts-extractor-window-count", "in:string", "out:long", b ->
        windowedOut(b.stream("in", Consumed.with(S, S).withTimestampExtractor((r, partitionTime) -> {
              String v = (String) r.value();
              return v == null ? r.timestamp() : Long.parseLong(v.substring(v.indexOf('@') + 1));
            })).groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(ms(10)))
            .count(win("tc", L)), "out", L));

    reg("win-tumbling-grace-reduce", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
            .reduce((a, v) -> a + "," + v, win("wr", S)), "out", S));

    reg("win-hopping-count", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)).advanceBy(ms(5)))
            .count(win("wc", L)), "out", L));

    reg("win-group-by-aggregate", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupBy((k, v) -> first(v), Grouped.with("by-letter", S, S))
            .windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
            .aggregate(() -> "", (k, v, a) -> a + "+" + v, win("wa", S)), "out", S));

    reg("win-sliding-count", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceWithNoGrace(ms(10)))
            .count(win("sc", L)), "out", L));

    reg("win-sliding-grace-reduce", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)))
            .reduce((a, v) -> a + "," + v, win("sr", S)), "out", S));

    reg("win-session-count", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SessionWindows.ofInactivityGapWithNoGrace(ms(10)))
            .count(ses("ssc", L)), "out", L));

    reg("win-session-grace-reduce", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(10), ms(5)))
            .reduce((a, v) -> a + "," + v, ses("ssr", S)), "out", S));

    reg("win-session-aggregate", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(10), ms(5)))
            .aggregate(() -> "", (k, v, a) -> a + "+" + v, (k, a1, a2) -> a1 + "|" + a2, ses("ssa", S)), "out", S));

    // Final results only: EmitStrategy.onWindowClose() and, for the same Go
    // topology (EmitOnWindowClose), suppress(untilWindowCloses).
    reg("win-tumbling-emit-close", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).count(win("wc", L)), "out", L));

    reg("win-tumbling-suppress", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
            .count(win("wc", L)).suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())),
            "out", L));

    // The same with a window store retention of one minute instead of the
    // default size + grace: emitStrategy(onWindowClose) reads the final
    // results back from the store, and loses those already expired.
    reg("win-tumbling-emit-close-retention", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).count(win("wc", L).withRetention(Duration.ofMinutes(1))),
            "out", L));

    reg("win-hopping-emit-close-retention", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)).advanceBy(ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).count(win("wc", L).withRetention(Duration.ofMinutes(1))),
            "out", L));

    reg("win-hopping-emit-close", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)).advanceBy(ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).count(win("wc", L)), "out", L));

    reg("win-sliding-emit-close", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).reduce((a, v) -> a + "," + v, win("sr", S)), "out", S));

    reg("win-session-emit-close", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(10), ms(5)))
            .emitStrategy(EmitStrategy.onWindowClose()).reduce((a, v) -> a + "," + v, ses("ssr", S)), "out", S));

    reg("win-session-suppress", "in:string", "out:string", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(10), ms(5)))
            .reduce((a, v) -> a + "," + v, ses("ssr", S))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded())), "out", S));

    // ---------------------------------------------------------------- suppress

    // Rate-limited tables: suppress(untilTimeLimit(...)) holds each key's
    // updates until stream time (the largest timestamp the suppress node has
    // seen) reaches the time of the key's first held update plus the limit,
    // then forwards the latest. Go twin: Table.Suppress(UntilTimeLimit(...)).
    reg("suppress-time-limit", "in:string", "out:long", b ->
        in(b, "in").groupByKey().count(kv("counts", L))
            .suppress(Suppressed.untilTimeLimit(ms(10), Suppressed.BufferConfig.unbounded()).withName("sup"))
            .toStream().to("out", Produced.with(S, L)));

    reg("suppress-time-limit-zero", "in:string", "out:long", b ->
        in(b, "in").groupByKey().count(kv("counts", L))
            .suppress(Suppressed.untilTimeLimit(Duration.ZERO, Suppressed.BufferConfig.unbounded()).withName("sup"))
            .toStream().to("out", Produced.with(S, L)));

    reg("suppress-time-limit-tombstone", "in:string", "out:string", b ->
        table(b, "in", "t")
            .suppress(Suppressed.untilTimeLimit(ms(10), Suppressed.BufferConfig.unbounded()).withName("sup"))
            .toStream().to("out", Produced.with(S, S)));

    reg("suppress-time-limit-max-records", "in:string", "out:long", b ->
        in(b, "in").groupByKey().count(kv("counts", L))
            .suppress(Suppressed.untilTimeLimit(ms(10), Suppressed.BufferConfig.maxRecords(2).emitEarlyWhenFull())
                .withName("sup"))
            .toStream().to("out", Produced.with(S, L)));

    reg("suppress-windowed", "in:string", "out:long", b ->
        windowedOut(in(b, "in").groupByKey().windowedBy(TimeWindows.ofSizeWithNoGrace(ms(10)))
            .count(win("wc", L))
            .suppress(Suppressed.untilTimeLimit(ms(5), Suppressed.BufferConfig.unbounded()).withName("sup")),
            "out", L));

    // A suppressed table regrouped and counted: the regrouping subtracts the
    // old value that the suppression forwards.
    reg("suppress-regroup", "in:string", "out-suppressed:string,out:long", b -> {
      KTable<String, String> sup = table(b, "in", "t")
          .suppress(Suppressed.untilTimeLimit(ms(10), Suppressed.BufferConfig.unbounded()).withName("sup"));
      sup.toStream().to("out-suppressed", Produced.with(S, S));
      sup.groupBy((k, v) -> KeyValue.pair(v, k), Grouped.with("regroup", S, S))
          .count(kv("group-counts", L)).toStream().to("out", Produced.with(S, L));
    });

    // ------------------------------------------------------------------ cogroup

    // Two streams of different value types fold into one string aggregate:
    // "left" values appended as "+v", "right" (long) values as "#v".
    reg("cogroup-aggregate", "left:string,right:long", "out:string", b -> {
      KGroupedStream<String, Long> right = inLong(b, "right").groupByKey(Grouped.with(S, L));
      in(b, "left").groupByKey()
          .<String>cogroup((k, v, a) -> a + "+" + v)
          .cogroup(right, (k, v, a) -> a + "#" + v)
          .aggregate(() -> "", kv("cg", S))
          .toStream().to("out", Produced.with(S, S));
    });

    // The right stream regrouped by the first letter of its value, through
    // the repartition topic of the grouping "by-letter".
    reg("cogroup-repartition", "left:string,right:string", "out:string", b -> {
      KGroupedStream<String, String> right = in(b, "right").groupBy((k, v) -> first(v), Grouped.with("by-letter", S, S));
      in(b, "left").groupByKey()
          .<String>cogroup((k, v, a) -> a + "+" + v)
          .cogroup(right, (k, v, a) -> a + "#" + v)
          .aggregate(() -> "", kv("cg", S))
          .toStream().to("out", Produced.with(S, S));
    });

    reg("cogroup-windowed", "left:string,right:long", "out:string", b -> {
      KGroupedStream<String, Long> right = inLong(b, "right").groupByKey(Grouped.with(S, L));
      windowedOut(in(b, "left").groupByKey()
          .<String>cogroup((k, v, a) -> a + "+" + v)
          .cogroup(right, (k, v, a) -> a + "#" + v)
          .windowedBy(TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
          .aggregate(() -> "", win("cw", S)), "out", S);
    });

    reg("cogroup-sliding", "left:string,right:long", "out:string", b -> {
      KGroupedStream<String, Long> right = inLong(b, "right").groupByKey(Grouped.with(S, L));
      windowedOut(in(b, "left").groupByKey()
          .<String>cogroup((k, v, a) -> a + "+" + v)
          .cogroup(right, (k, v, a) -> a + "#" + v)
          .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)))
          .aggregate(() -> "", win("cs", S)), "out", S);
    });

    reg("cogroup-session", "left:string,right:long", "out:string", b -> {
      KGroupedStream<String, Long> right = inLong(b, "right").groupByKey(Grouped.with(S, L));
      windowedOut(in(b, "left").groupByKey()
          .<String>cogroup((k, v, a) -> a + "+" + v)
          .cogroup(right, (k, v, a) -> a + "#" + v)
          .windowedBy(SessionWindows.ofInactivityGapAndGrace(ms(10), ms(5)))
          .aggregate(() -> "", (k, a1, a2) -> a1 + "|" + a2, ses("cses", S)), "out", S);
    });

    // ------------------------------------------------------ stream-stream joins

    StreamJoined<String, String, String> sj = StreamJoined.with(S, S, S);

    reg("ss-join", "left:string,right:string", "out:string", b ->
        in(b, "left").join(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceWithNoGrace(ms(10)), sj)
            .to("out", Produced.with(S, S)));

    reg("ss-join-grace", "left:string,right:string", "out:string", b ->
        in(b, "left").join(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)), sj)
            .to("out", Produced.with(S, S)));

    // before 2, after 10: a left record at t joins right records in [t-2, t+10].
    reg("ss-join-asymmetric", "left:string,right:string", "out:string", b ->
        in(b, "left").join(in(b, "right"), Topologies::join,
            JoinWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)).before(ms(2)), sj)
            .to("out", Produced.with(S, S)));

    reg("ss-left-join", "left:string,right:string", "out:string", b ->
        in(b, "left").leftJoin(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceWithNoGrace(ms(10)), sj)
            .to("out", Produced.with(S, S)));

    reg("ss-left-join-grace", "left:string,right:string", "out:string", b ->
        in(b, "left").leftJoin(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)), sj)
            .to("out", Produced.with(S, S)));

    reg("ss-outer-join", "left:string,right:string", "out:string", b ->
        in(b, "left").outerJoin(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceWithNoGrace(ms(10)), sj)
            .to("out", Produced.with(S, S)));

    reg("ss-outer-join-grace", "left:string,right:string", "out:string", b ->
        in(b, "left").outerJoin(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)), sj)
            .to("out", Produced.with(S, S)));

    // The left side re-keyed by the first letter of its value: repartitioned
    // before the join.
    reg("ss-join-rekeyed", "left:string,right:string", "out:string", b ->
        in(b, "left").selectKey((k, v) -> first(v))
            .join(in(b, "right"), Topologies::join, JoinWindows.ofTimeDifferenceWithNoGrace(ms(10)),
                StreamJoined.<String, String, String>with(S, S, S).withName("rk"))
            .to("out", Produced.with(S, S)));

    // ------------------------------------------------------- stream-table joins

    reg("st-join", "in:string,table:string", "out:string", b ->
        in(b, "in").join(table(b, "table", "t"), Topologies::join).to("out", Produced.with(S, S)));

    reg("st-left-join", "in:string,table:string", "out:string", b ->
        in(b, "in").leftJoin(table(b, "table", "t"), Topologies::join).to("out", Produced.with(S, S)));

    reg("st-join-rekeyed", "in:string,table:string", "out:string", b ->
        in(b, "in").selectKey((k, v) -> fk(v))
            .join(table(b, "table", "t"), Topologies::join)
            .to("out", Produced.with(S, S)));

    // ------------------------------------------------------ stream-global joins

    reg("sg-join", "in:string,global:string", "out:string", b -> {
      GlobalKTable<String, String> g = b.globalTable("global", Consumed.with(S, S), kv("g", S));
      in(b, "in").join(g, (k, v) -> fk(v), Topologies::join).to("out", Produced.with(S, S));
    });

    reg("sg-left-join", "in:string,global:string", "out:string", b -> {
      GlobalKTable<String, String> g = b.globalTable("global", Consumed.with(S, S), kv("g", S));
      in(b, "in").leftJoin(g, (k, v) -> fk(v), Topologies::join).to("out", Produced.with(S, S));
    });
  }

  static List<String> names() {
    return Arrays.asList(REGISTRY.keySet().toArray(new String[0]));
  }
}
