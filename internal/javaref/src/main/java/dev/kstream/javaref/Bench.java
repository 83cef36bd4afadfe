package dev.kstream.javaref;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.Stores;

/**
 * The scenarios of kstream's benchmark harness (internal/bench) in Kafka
 * Streams, which internal/bench runs as a child process against the same
 * cluster as kstream (and the hand-written franz-go loop), in the same run:
 *
 * <ul>
 *   <li>passthrough: source, an identity map, a filter dropping the keys that
 *       end in "#x", and a sink, with byte-array serdes, as internal/bench's
 *       passthroughTopology;
 *   <li>wordcount: lines split into words (flatMap, keyed by word), grouped
 *       by key through the repartition topic "APPID-counts-repartition",
 *       counted in an in-memory store "counts" with the record cache off
 *       (every update is forwarded, as kstream does by default), and the
 *       counts written as string keys and 8-byte longs, as internal/bench's
 *       wordCountTopology.
 *   <li>windowed: records with string keys (users) grouped by key, counted
 *       per one-minute tumbling window without grace
 *       (TimeWindows.ofSizeWithNoGrace) in an in-memory window store
 *       "window-counts" with the record cache off (every update is
 *       forwarded), and the counts written with time-windowed string keys
 *       (the key, then the window start) and 8-byte longs, as
 *       internal/bench's windowedTopology.
 *   <li>join: the topic of -table read as a table of users (string keys,
 *       byte-array values) in an in-memory store "users" whose changelog is
 *       that topic (topology.optimization=all), and the records of -in
 *       left-joined with it: each comes out with its value followed by its
 *       user's (alone if the table lacks the user), as internal/bench's
 *       joinTopology. -in and -table must be co-partitioned.
 *   <li>restore: records of -in (string keys, 8-byte longs) counted by key
 *       in a store named -store, in memory or, with -persistent, in RocksDB,
 *       as internal/bench's restore scenario does. The harness fills the
 *       store's changelog "APPID-STORE-changelog" first and leaves -in
 *       empty: the application restores the store and then idles. It says
 *       "restored" when the restore has ended (see the protocol).
 *   <li>global: the topic of -table (string keys, 8-byte longs) read as a
 *       global table into a store named -store, in memory or, with
 *       -persistent, in RocksDB, as internal/bench's global scenario does,
 *       and the records of -in (left empty) only counted. The global
 *       table's bootstrap is a restore: it says "restored" too.
 * </ul>
 *
 * <pre>
 *   Bench -scenario passthrough|wordcount|windowed|join|restore|global -brokers HOST:PORT,... -app-id ID -in TOPIC
 *         -out TOPIC [-table TOPIC] [-store NAME [-persistent]] [-eos] [-max-poll N]
 *         [-linger-ms MS] [-commit-ms MS] [-threads N] [-batch-bytes N] [-paused]
 * </pre>
 *
 * -table is the table topic of the join and of global, and required there;
 * -store names the store of restore and global, and is required there.
 *
 * Settings left out keep Kafka Streams' defaults. With -paused the
 * application starts paused (KafkaStreams#pause) and resumes when it reads
 * "resume" on stdin, so that the harness can start the clock after the JVM,
 * the consumer group and the task assignment are ready. A paused application
 * does not restore its stores either, so an application with stores starts
 * running on an empty input topic instead, and pauses when it reads "pause"
 * on stdin, before the harness fills the topic.
 *
 * <p>Protocol, one line each, on stdout:
 *
 * <pre>
 *   state NAME                      on every state change of the application
 *   p PROCESSED TASKS               every 5 ms when either changed: input records
 *                                   processed so far (lines in the word count, stream
 *                                   records in the join), active tasks
 *   paused CPU_NS | resumed CPU_NS | cpu CPU_NS
 *                                   answers to "pause", "resume" and "cpu" on stdin: the
 *                                   process's CPU time so far, in nanoseconds
 *   restored RECORDS NANOS CPU_NS   at the end of each store partition's restore: RECORDS
 *                                   restored so far, NANOS since the first restore's start,
 *                                   and the process's CPU time in that span, in nanoseconds
 *   error MESSAGE                   a stream thread failed; the program exits 1
 * </pre>
 *
 * SIGTERM (or "stop" on stdin, or the end of stdin) closes the application,
 * which commits its work, and exits 0.
 */
public final class Bench {
  private Bench() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> flags = parse(args);
    String in = required(flags, "in");
    String out = required(flags, "out");
    boolean paused = flags.containsKey("paused");

    Path stateDir = Files.createTempDirectory("kstream-bench-streams");
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, required(flags, "app-id"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, required(flags, "brokers"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        flags.containsKey("eos") ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, flags.getOrDefault("threads", "1"));
    if (flags.containsKey("commit-ms")) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, flags.get("commit-ms"));
    }
    if (flags.containsKey("max-poll")) {
      props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), flags.get("max-poll"));
    }
    if (flags.containsKey("linger-ms")) {
      props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), flags.get("linger-ms"));
    }
    if (flags.containsKey("batch-bytes")) {
      props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), flags.get("batch-bytes"));
    }
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

    LongAdder processed = new LongAdder();
    StreamsBuilder b = new StreamsBuilder();
    String scenario = required(flags, "scenario");
    switch (scenario) {
      case "passthrough":
        byte[] drop = "#x".getBytes(StandardCharsets.UTF_8);
        b.stream(in, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
            .map((k, v) -> {
              processed.increment();
              return KeyValue.pair(k, v);
            })
            .filter((k, v) -> !endsWith(k, drop))
            .to(out, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
        break;
      case "wordcount":
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        b.stream(in, Consumed.with(Serdes.ByteArray(), Serdes.String()))
            .flatMap((k, line) -> {
              processed.increment();
              List<KeyValue<String, String>> words = new ArrayList<>();
              for (String w : line.split(" ")) {
                if (!w.isEmpty()) {
                  words.add(KeyValue.pair(w, w));
                }
              }
              return words;
            })
            .groupByKey(Grouped.with("counts", Serdes.String(), Serdes.String()))
            .count(Materialized.<String, Long>as(Stores.inMemoryKeyValueStore("counts"))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        break;
      case "windowed":
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        Duration size = Duration.ofMinutes(1);
        b.stream(in, Consumed.with(Serdes.String(), Serdes.ByteArray()))
            .peek((k, v) -> processed.increment())
            .groupByKey(Grouped.with(Serdes.String(), Serdes.ByteArray()))
            .windowedBy(TimeWindows.ofSizeWithNoGrace(size))
            .count(Materialized.<String, Long>as(Stores.inMemoryWindowStore("window-counts", size, size, false))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream()
            .to(out, Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, size.toMillis()), Serdes.Long()));
        break;
      case "join":
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.TOPOLOGY_OPTIMIZATION_CONFIG, StreamsConfig.OPTIMIZE);
        KTable<String, byte[]> users = b.table(required(flags, "table"), Consumed.with(Serdes.String(), Serdes.ByteArray()),
            Materialized.<String, byte[]>as(Stores.inMemoryKeyValueStore("users"))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.ByteArray()));
        b.stream(in, Consumed.with(Serdes.String(), Serdes.ByteArray()))
            .leftJoin(users, (v, user) -> {
              processed.increment();
              byte[] joined = Arrays.copyOf(v, v.length + (user == null ? 0 : user.length));
              if (user != null) {
                System.arraycopy(user, 0, joined, v.length, user.length);
              }
              return joined;
            }, Joined.with(Serdes.String(), Serdes.ByteArray(), Serdes.ByteArray()))
            .to(out, Produced.with(Serdes.String(), Serdes.ByteArray()));
        break;
      case "restore":
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        String store = required(flags, "store");
        b.stream(in, Consumed.with(Serdes.String(), Serdes.Long()))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
            .count(Materialized.<String, Long>as(flags.containsKey("persistent")
                    ? Stores.persistentTimestampedKeyValueStore(store) : Stores.inMemoryKeyValueStore(store))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream()
            .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        break;
      case "global":
        String global = required(flags, "store");
        b.globalTable(required(flags, "table"), Consumed.with(Serdes.String(), Serdes.Long()),
            Materialized.<String, Long>as(flags.containsKey("persistent")
                    ? Stores.persistentKeyValueStore(global) : Stores.inMemoryKeyValueStore(global))
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
        b.stream(in, Consumed.with(Serdes.String(), Serdes.Long())).foreach((k, v) -> processed.increment());
        break;
      default:
        throw new IllegalArgumentException("unknown -scenario " + scenario);
    }

    PrintStream stdout = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    KafkaStreams streams = new KafkaStreams(b.build(props), props); // build(props): the optimizations
    AtomicReference<Throwable> failure = new AtomicReference<>();
    CountDownLatch stop = new CountDownLatch(1);
    streams.setStateListener((now, before) -> say(stdout, "state " + now));
    streams.setGlobalStateRestoreListener(new RestoreTimer(stdout, processed));
    streams.setUncaughtExceptionHandler(e -> {
      failure.compareAndSet(null, e);
      stop.countDown();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
          .SHUTDOWN_CLIENT;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      stop.countDown();
      streams.close(Duration.ofSeconds(60));
    }));

    if (paused) {
      streams.pause();
    }
    streams.start();

    Thread reporter = new Thread(() -> report(stdout, streams, processed, stop), "bench-reporter");
    reporter.setDaemon(true);
    reporter.start();
    Thread commands = new Thread(() -> commands(stdout, streams, stop), "bench-commands");
    commands.setDaemon(true);
    commands.start();

    stop.await();
    streams.close(Duration.ofSeconds(60));
    Throwable e = failure.get();
    if (e != null) {
      StringBuilder msg = new StringBuilder(String.valueOf(e));
      for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
        msg.append(" (caused by ").append(c).append(')');
      }
      say(stdout, "error " + msg.toString().replace('\n', ' '));
      System.exit(1);
    }
    System.exit(0);
  }

  /**
   * Times the restores of an application's stores (global ones included):
   * at the end of each store partition's restore it says "restored" with the
   * records restored so far and the time since the first one started. It
   * counts the restored records as processed, for the progress lines.
   */
  private static final class RestoreTimer implements StateRestoreListener {
    private final PrintStream stdout;
    private final LongAdder processed;
    private boolean started;
    private long total;
    private long startNanos;
    private long startCpu;

    RestoreTimer(PrintStream stdout, LongAdder processed) {
      this.stdout = stdout;
      this.processed = processed;
    }

    @Override
    public synchronized void onRestoreStart(TopicPartition tp, String store, long start, long end) {
      if (!started) {
        started = true;
        startNanos = System.nanoTime();
        startCpu = cpuNanos();
      }
    }

    @Override
    public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {
      processed.add(n);
    }

    @Override
    public synchronized void onRestoreEnd(TopicPartition tp, String store, long restored) {
      total += restored;
      say(stdout, "restored " + total + " " + (System.nanoTime() - startNanos) + " " + (cpuNanos() - startCpu));
    }
  }

  private static boolean endsWith(byte[] k, byte[] suffix) {
    if (k == null || k.length < suffix.length) {
      return false;
    }
    return Arrays.equals(k, k.length - suffix.length, k.length, suffix, 0, suffix.length);
  }

  /** Prints progress every 5 ms when it changed. */
  private static void report(PrintStream stdout, KafkaStreams streams, LongAdder processed, CountDownLatch stop) {
    long lastN = -1;
    int lastTasks = -1;
    int tick = 0;
    int tasks = 0;
    try {
      while (!stop.await(5, java.util.concurrent.TimeUnit.MILLISECONDS)) {
        if (tick++ % 10 == 0) { // the metadata walk is not free: every 50 ms
          tasks = 0;
          for (ThreadMetadata t : streams.metadataForLocalThreads()) {
            tasks += t.activeTasks().size();
          }
        }
        long n = processed.sum();
        if (n != lastN || tasks != lastTasks) {
          say(stdout, "p " + n + " " + tasks);
          lastN = n;
          lastTasks = tasks;
        }
      }
    } catch (InterruptedException | RuntimeException e) {
      // the application is closing
    }
  }

  /** Reads "resume", "cpu" and "stop" from stdin. */
  private static void commands(PrintStream stdout, KafkaStreams streams, CountDownLatch stop) {
    try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        switch (line.trim()) {
          case "pause":
            streams.pause();
            say(stdout, "paused " + cpuNanos());
            break;
          case "resume":
            streams.resume();
            say(stdout, "resumed " + cpuNanos());
            break;
          case "cpu":
            say(stdout, "cpu " + cpuNanos());
            break;
          case "stop":
            stop.countDown();
            return;
          default:
            say(stdout, "error unknown command: " + line);
        }
      }
    } catch (IOException e) {
      // stdin closed
    }
    stop.countDown();
  }

  private static long cpuNanos() {
    java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    if (os instanceof com.sun.management.OperatingSystemMXBean) {
      return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime();
    }
    return -1;
  }

  private static synchronized void say(PrintStream stdout, String line) {
    stdout.println(line);
  }

  private static Map<String, String> parse(String[] args) {
    Map<String, String> flags = new HashMap<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("-")) {
        throw new IllegalArgumentException("unexpected argument " + a);
      }
      String name = a.substring(1);
      switch (name) {
        case "eos":
        case "paused":
        case "persistent":
          flags.put(name, "");
          break;
        default:
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException("flag " + a + " needs a value");
          }
          flags.put(name, args[++i]);
      }
    }
    return flags;
  }

  private static String required(Map<String, String> flags, String name) {
    String v = flags.get(name);
    if (v == null) {
      throw new IllegalArgumentException("missing -" + name);
    }
    return v;
  }
}
