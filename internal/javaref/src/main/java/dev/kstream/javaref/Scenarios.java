package dev.kstream.javaref;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Runs every scenario of a folder (testdata/scenarios/NAME.json) through
 * Kafka Streams' TopologyTestDriver and records the output records of each
 * output topic in NAME.expected.json: what kstream's differential test
 * (differential_test.go) compares kstest's output with.
 *
 * <pre>
 *   Scenarios [-check] DIR [NAME...]
 * </pre>
 *
 * Without -check the recordings are rewritten (only those that changed).
 * With -check nothing is written: the program prints how each recording
 * differs from what Kafka Streams gives now, and exits 1 if any does (or is
 * missing, or has no scenario).
 *
 * <p>The driver runs with the record cache off (statestore.cache.max.bytes=0:
 * every update is forwarded, as kstream does), a fixed application id
 * ("kstest", kstest's default), the wall clock at the epoch, and the internal
 * throttles of emit-on-window-close and of left/outer stream-stream join
 * results (once per second of wall-clock time, which never moves in the test
 * driver) set to 0, so that Kafka Streams checks on every record, as kstream
 * does. TopologyTestDriver has one partition per topic.
 */
public final class Scenarios {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String KAFKA_VERSION = kafkaVersion();

  private Scenarios() {}

  public static void main(String[] args) throws Exception {
    boolean check = false;
    Path dir = null;
    Set<String> only = new TreeSet<>();
    for (String a : args) {
      if (a.equals("-check")) {
        check = true;
      } else if (dir == null) {
        dir = Paths.get(a);
      } else {
        only.add(a);
      }
    }
    if (dir == null) {
      System.err.println("usage: Scenarios [-check] DIR [NAME...]");
      System.exit(2);
    }
    long start = System.nanoTime();
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(p -> isScenario(p.getFileName().toString()))
          .sorted(Comparator.comparing(Path::toString)).collect(Collectors.toList());
    }
    int failures = 0;
    int changed = 0;
    int ran = 0;
    Set<String> names = new TreeSet<>();
    for (Path f : files) {
      String name = f.getFileName().toString().replaceFirst("\\.json$", "");
      names.add(name);
      if (!only.isEmpty() && !only.contains(name)) {
        continue;
      }
      ran++;
      Path expected = dir.resolve(name + ".expected.json");
      String got;
      try {
        got = run(name, JSON.readTree(f.toFile()));
      } catch (Exception e) {
        failures++;
        System.err.printf("FAIL %s: %s%n", name, e);
        continue;
      }
      String old = Files.exists(expected) ? Files.readString(expected, StandardCharsets.UTF_8) : null;
      if (got.equals(old)) {
        continue;
      }
      changed++;
      if (check) {
        failures++;
        System.err.printf("DIFF %s: %s differs from what Kafka Streams %s gives now:%n%s%n", name,
            expected.getFileName(), KAFKA_VERSION, old == null ? "  (no recording)" : diff(old, got));
      } else {
        Files.writeString(expected, got, StandardCharsets.UTF_8);
        System.err.printf("wrote %s%n", expected);
      }
    }
    if (only.isEmpty()) {
      try (Stream<Path> s = Files.list(dir)) {
        for (Path p : (Iterable<Path>) s.sorted()::iterator) {
          String n = p.getFileName().toString();
          if (n.endsWith(".expected.json") && !names.contains(n.replaceFirst("\\.expected\\.json$", ""))) {
            failures++;
            System.err.printf("STALE %s: a recording without a scenario (delete it)%n", n);
          }
        }
      }
    }
    System.err.printf("Kafka Streams %s: %d scenarios, %d recordings %s, %d failures, %.1fs%n",
        KAFKA_VERSION, ran, changed, check ? "differ" : "rewritten", failures,
        (System.nanoTime() - start) / 1e9);
    System.exit(failures == 0 ? 0 : 1);
  }

  /** The version of the kafka-clients jar on the classpath. */
  private static String kafkaVersion() {
    Properties p = new Properties();
    try (var in = StreamsConfig.class.getClassLoader().getResourceAsStream("kafka/kafka-version.properties")) {
      if (in != null) {
        p.load(in);
      }
    } catch (IOException e) {
      // unknown
    }
    return p.getProperty("version", "unknown");
  }

  static boolean isScenario(String file) {
    return file.endsWith(".json") && !file.endsWith(".expected.json") && !file.endsWith(".kstream.json");
  }

  /** Runs one scenario and renders its recording. */
  static String run(String name, JsonNode sc) throws IOException {
    String topoName = text(sc, "topology");
    Topologies.Topo topo = Topologies.REGISTRY.get(topoName);
    if (topo == null) {
      throw new IllegalArgumentException("unknown topology \"" + topoName + "\" (registered: "
          + Topologies.names() + ")");
    }
    StreamsBuilder b = new StreamsBuilder();
    topo.build.accept(b);
    Topology t = b.build();

    Path stateDir = Files.createTempDirectory("kstream-javaref-");
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, "kstest");
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:9092");
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);
    p.put("__emit.interval.ms.kstreams.windowed.aggregation__", 0L);

    Map<String, List<TestRecord<String, Object>>> outputs = new TreeMap<>();
    try (TopologyTestDriver d = new TopologyTestDriver(t, p, Instant.ofEpochMilli(0))) {
      Map<String, TestInputTopic<String, Object>> ins = new TreeMap<>();
      for (Map.Entry<String, Topologies.Type> e : topo.inputs.entrySet()) {
        ins.put(e.getKey(), d.createInputTopic(e.getKey(), Serdes.String().serializer(),
            e.getValue().<Object>serde().serializer()));
      }
      Map<String, TestOutputTopic<String, Object>> outs = new TreeMap<>();
      for (Map.Entry<String, Topologies.Type> e : topo.outputs.entrySet()) {
        outs.put(e.getKey(), d.createOutputTopic(e.getKey(), Serdes.String().deserializer(),
            e.getValue().<Object>serde().deserializer()));
      }
      int i = 0;
      for (JsonNode in : sc.path("inputs")) {
        String where = name + ": input " + i++;
        String topic = text(in, "topic");
        TestInputTopic<String, Object> it = ins.get(topic);
        if (it == null) {
          throw new IllegalArgumentException(where + ": topology " + topoName + " reads no topic \"" + topic + "\"");
        }
        JsonNode k = in.get("key");
        if (k == null || !(k.isNull() || k.isTextual())) {
          throw new IllegalArgumentException(where + ": key must be a string or null");
        }
        JsonNode ts = in.get("ts");
        if (ts == null || !ts.canConvertToLong() || !ts.isIntegralNumber()) {
          throw new IllegalArgumentException(where + ": ts must be an integer");
        }
        Object v = value(where, in.get("value"), topo.inputs.get(topic));
        it.pipeInput(k.isNull() ? null : k.asText(), v, ts.asLong());
      }
      for (Map.Entry<String, TestOutputTopic<String, Object>> e : outs.entrySet()) {
        outputs.put(e.getKey(), e.getValue().readRecordsToList());
      }
      Set<String> extra = new TreeSet<>(d.producedTopicNames());
      extra.removeIf(n -> n.startsWith("kstest-") || topo.outputs.containsKey(n));
      if (!extra.isEmpty()) {
        throw new IllegalStateException("the topology wrote to undeclared topics " + extra);
      }
    } finally {
      deleteTree(stateDir);
    }
    return render(topoName, outputs, topo.outputs);
  }

  private static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || !v.isTextual()) {
      throw new IllegalArgumentException("\"" + field + "\" must be a string");
    }
    return v.asText();
  }

  private static Object value(String where, JsonNode v, Topologies.Type type) {
    if (v == null) {
      throw new IllegalArgumentException(where + ": no value (null for a tombstone)");
    }
    if (v.isNull()) {
      return null;
    }
    switch (type) {
      case STRING:
        if (!v.isTextual()) {
          throw new IllegalArgumentException(where + ": the topic's values are strings, got " + v);
        }
        return v.asText();
      case LONG:
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
          throw new IllegalArgumentException(where + ": the topic's values are longs, got " + v);
        }
        return v.asLong();
      default:
        throw new IllegalStateException();
    }
  }

  /**
   * Renders a recording: one record a line, so that diffs are readable. The
   * Go side reads it with encoding/json and writes its own .kstream.json
   * files in the same layout.
   */
  static String render(String topo, Map<String, List<TestRecord<String, Object>>> outputs,
      Map<String, Topologies.Type> types) throws IOException {
    StringBuilder sb = new StringBuilder();
    sb.append("{\n");
    sb.append("  \"topology\": ").append(JSON.writeValueAsString(topo)).append(",\n");
    sb.append("  \"kafka_streams\": ").append(JSON.writeValueAsString(KAFKA_VERSION)).append(",\n");
    sb.append("  \"outputs\": {");
    Iterator<Map.Entry<String, List<TestRecord<String, Object>>>> it = outputs.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, List<TestRecord<String, Object>>> e = it.next();
      sb.append("\n    ").append(JSON.writeValueAsString(e.getKey())).append(": [");
      List<TestRecord<String, Object>> recs = e.getValue();
      for (int i = 0; i < recs.size(); i++) {
        TestRecord<String, Object> r = recs.get(i);
        sb.append(i == 0 ? "\n" : ",\n");
        sb.append("      {\"key\": ").append(JSON.writeValueAsString(r.key()))
            .append(", \"value\": ").append(JSON.writeValueAsString(r.value()))
            .append(", \"ts\": ").append(r.timestamp()).append("}");
      }
      sb.append(recs.isEmpty() ? "]" : "\n    ]");
      if (it.hasNext()) {
        sb.append(",");
      }
    }
    sb.append(outputs.isEmpty() ? "}\n" : "\n  }\n");
    sb.append("}\n");
    return sb.toString();
  }

  /** A line diff: the lines only in the old file (-) and only in the new (+). */
  static String diff(String oldText, String newText) {
    String[] a = oldText.split("\n", -1);
    String[] b = newText.split("\n", -1);
    int[][] lcs = new int[a.length + 1][b.length + 1];
    for (int i = a.length - 1; i >= 0; i--) {
      for (int j = b.length - 1; j >= 0; j--) {
        lcs[i][j] = a[i].equals(b[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    List<String> out = new ArrayList<>();
    int i = 0;
    int j = 0;
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && a[i].equals(b[j])) {
        out.add("    " + a[i]);
        i++;
        j++;
      } else if (i < a.length && (j == b.length || lcs[i + 1][j] >= lcs[i][j + 1])) {
        out.add("  - " + a[i++]);
      } else {
        out.add("  + " + b[j++]);
      }
    }
    return String.join("\n", out);
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(p);
      }
    }
  }
}
