package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// implStreams is Kafka Streams running the same topology as kstream
// (internal/javaref's dev.kstream.javaref.Bench) in a child JVM, against the
// same cluster, in the same run.
const implStreams = "kafka-streams"

// The -kafka-streams flag.
const (
	streamsAuto = "auto" // when java and the built reference programs (or mvn to build them) are present
	streamsOn   = "on"   // required: fail when they are not
	streamsOff  = "off"
)

// javaBatchBytes is the producer batch size given to Kafka Streams: franz-go's
// default batch size (ProducerBatchMaxBytes), instead of Java's 16 KiB, so
// that both producers batch alike.
const javaBatchBytes = 1_000_012

// javaRef is how to run the Kafka Streams reference programs.
type javaRef struct {
	java      string // the java binary
	version   string // Kafka's
	classpath string // classes and their dependencies
	threads   int    // num.stream.threads
}

// findJavaRef locates java and internal/javaref's compiled programs, building
// them with mvn (as scripts/test.sh does) when they are missing or older
// than their sources. It returns nil and the reason when Kafka Streams cannot
// run here.
func findJavaRef(logw io.Writer) (*javaRef, string) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, "java not found"
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err.Error()
	}
	ref := filepath.Join(root, "internal", "javaref")
	version, err := kafkaVersion(filepath.Join(ref, "pom.xml"))
	if err != nil {
		return nil, err.Error()
	}
	target := filepath.Join(ref, "target", "streams")
	classes := filepath.Join(target, "classes")
	cpFile := filepath.Join(target, "classpath.txt")
	if stale(filepath.Join(classes, "dev", "kstream", "javaref", "Bench.class"), filepath.Join(ref, "src", "main", "java", "dev", "kstream", "javaref", "Bench.java")) || stale(cpFile, filepath.Join(ref, "streams", "pom.xml")) {
		mvn, err := exec.LookPath("mvn")
		if err != nil {
			return nil, "internal/javaref is not built and mvn is not found"
		}
		fmt.Fprintln(logw, "bench: building internal/javaref (Kafka Streams", version+") with mvn")
		cmd := exec.Command(mvn, "-B", "-q", "-ntp", "-Dstyle.color=never", "-f", filepath.Join(ref, "streams", "pom.xml"),
			"-Dkafka.version="+version, "compile", "dependency:build-classpath")
		cmd.Stdout, cmd.Stderr = logw, logw
		if err := cmd.Run(); err != nil {
			return nil, fmt.Sprintf("building internal/javaref: %v", err)
		}
	}
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		return nil, err.Error()
	}
	return &javaRef{java: java, version: version, classpath: classes + string(os.PathListSeparator) + strings.TrimSpace(string(cp)), threads: 1}, ""
}

// stale reports whether out is missing or older than src.
func stale(out, src string) bool {
	o, err := os.Stat(out)
	if err != nil {
		return true
	}
	s, err := os.Stat(src)
	return err == nil && s.ModTime().After(o.ModTime())
}

// moduleRoot finds the kstream module's directory from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "internal", "javaref", "streams", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("internal/javaref not found above the working directory (run from the kstream module)")
		}
		dir = parent
	}
}

// kafkaVersion reads <kafka.version> from internal/javaref/pom.xml.
func kafkaVersion(pom string) (string, error) {
	b, err := os.ReadFile(pom)
	if err != nil {
		return "", err
	}
	_, rest, ok := bytes.Cut(b, []byte("<kafka.version>"))
	v, _, ok2 := bytes.Cut(rest, []byte("</kafka.version>"))
	if !ok || !ok2 {
		return "", fmt.Errorf("no <kafka.version> in %s", pom)
	}
	return string(bytes.TrimSpace(v)), nil
}

// streamsPipeline is Kafka Streams in a child JVM, speaking the line
// protocol documented in Bench.java.
type streamsPipeline struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	name   string
	tasks  int32 // when all are assigned, it is ready
	n      atomic.Int64
	active atomic.Int32
	fail   atomic.Pointer[string] // an "error" line
	reply  chan string            // answers to pause, resume and cpu
	// lastRestored is the latest "restored" line (each says how many
	// records all restores have restored so far); restoredLine signals one.
	lastRestored atomic.Pointer[string]
	restoredLine chan struct{}
	done         chan struct{}
	err          error // after done
	stderr       tailBuffer
	once         sync.Once
}

// startStreams starts Kafka Streams on the topology of scenario
// (passthrough, latency's passthrough, or a stateful scenario), reading in,
// and the topics of extra (Bench.java's flags), writing out. Paused, it
// joins the group and takes its tasks but processes nothing until resume.
func startStreams(ref *javaRef, scenario string, brokers []string, group, in, out string, p params, paused bool, extra ...string) (*streamsPipeline, error) {
	linger := p.linger
	if linger < 0 {
		linger = 10 * time.Millisecond // franz-go's default, which kstream and the hand loop use
	}
	args := append(strings.Fields(os.Getenv("KSTREAM_BENCH_JVM_OPTS")), "-cp", ref.classpath, "dev.kstream.javaref.Bench", "-scenario", scenario,
		"-brokers", strings.Join(brokers, ","), "-app-id", group, "-in", in, "-out", out,
		"-linger-ms", strconv.FormatInt(linger.Milliseconds(), 10),
		"-commit-ms", strconv.FormatInt(p.commitInterval().Milliseconds(), 10),
		"-batch-bytes", strconv.Itoa(javaBatchBytes), "-threads", strconv.Itoa(ref.threads))
	if p.batch > 0 {
		args = append(args, "-max-poll", strconv.Itoa(p.batch))
	}
	if p.eos {
		args = append(args, "-eos")
	}
	if paused {
		args = append(args, "-paused")
	}
	args = append(args, extra...)
	tasks := p.partitions
	if sc := findStateful(scenario); sc != nil {
		tasks *= sc.subTopologies
	}
	s := &streamsPipeline{cmd: exec.Command(ref.java, args...), name: group, tasks: tasks,
		reply: make(chan string, 1), restoredLine: make(chan struct{}, 1), done: make(chan struct{})}
	s.cmd.Stderr = &s.stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting Kafka Streams: %w", err)
	}
	go s.read(stdout)
	return s, nil
}

// read follows the child's stdout until it exits.
func (s *streamsPipeline) read(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		verb, rest, _ := strings.Cut(line, " ")
		switch verb {
		case "p":
			n, t, _ := strings.Cut(rest, " ")
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				s.n.Store(v)
			}
			if v, err := strconv.ParseInt(t, 10, 32); err == nil {
				s.active.Store(int32(v))
			}
		case "error":
			s.fail.CompareAndSwap(nil, &rest)
		case "restored":
			s.lastRestored.Store(&rest)
			select {
			case s.restoredLine <- struct{}{}:
			default:
			}
		case "paused", "resumed", "cpu":
			select {
			case s.reply <- rest:
			default:
			}
		}
	}
	err := s.cmd.Wait()
	if f := s.fail.Load(); f != nil {
		err = errors.Join(err, errors.New(*f))
	}
	if err != nil {
		if tail := s.stderr.String(); tail != "" {
			err = fmt.Errorf("%w; stderr: %s", err, tail)
		}
		s.err = fmt.Errorf("bench: Kafka Streams: %w", err)
	}
	close(s.done)
}

// ask sends a command and returns the CPU seconds the child answers with.
func (s *streamsPipeline) ask(cmd string) (float64, error) {
	if _, err := io.WriteString(s.stdin, cmd+"\n"); err != nil {
		return 0, fmt.Errorf("bench: Kafka Streams: %s: %w", cmd, err)
	}
	select {
	case r := <-s.reply:
		ns, err := strconv.ParseInt(r, 10, 64)
		if err != nil || ns < 0 {
			return 0, fmt.Errorf("bench: Kafka Streams: %s: bad answer %q", cmd, r)
		}
		return float64(ns) / 1e9, nil
	case <-s.done:
		return 0, stoppedEarly(s)
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("bench: Kafka Streams: no answer to %s", cmd)
	}
}

// restored waits until the application's store partitions have restored
// want records ("restored" lines), and returns the wall-clock and CPU
// seconds since the first restore started.
func (s *streamsPipeline) restored(ctx context.Context, want int64) (seconds, cpu float64, err error) {
	for {
		select {
		case <-s.restoredLine:
			line := *s.lastRestored.Load()
			var n, ns, cpuNs int64
			if _, err := fmt.Sscan(line, &n, &ns, &cpuNs); err != nil {
				return 0, 0, fmt.Errorf("bench: Kafka Streams: bad restored line %q: %w", line, err)
			}
			switch {
			case n > want:
				return 0, 0, fmt.Errorf("bench: Kafka Streams restored %d records, want %d", n, want)
			case n == want:
				return float64(ns) / 1e9, float64(cpuNs) / 1e9, nil
			}
		case <-s.done:
			return 0, 0, stoppedEarly(s)
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("bench: waiting for Kafka Streams' restore (%d of %d restored): %w", s.processed(), want, ctx.Err())
		}
	}
}

// pause stops processing (an application with stores starts unpaused, to
// restore them: see Bench.java).
func (s *streamsPipeline) pause() error {
	_, err := s.ask("pause")
	return err
}

// resume starts processing and returns the child's CPU seconds so far.
func (s *streamsPipeline) resume() (float64, error) { return s.ask("resume") }

func (s *streamsPipeline) processed() int64          { return s.n.Load() }
func (s *streamsPipeline) ready() bool               { return s.active.Load() == s.tasks }
func (s *streamsPipeline) finished() <-chan struct{} { return s.done }
func (s *streamsPipeline) group() string             { return s.name }

// cpu returns the child's CPU seconds so far.
func (s *streamsPipeline) cpu() (float64, error) { return s.ask("cpu") }

// stop closes the application (which commits) and waits for the JVM,
// killing it after a minute.
func (s *streamsPipeline) stop() error {
	s.once.Do(func() {
		_, _ = io.WriteString(s.stdin, "stop\n")
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s.err
}

// waitReady waits until every input partition is assigned to pl.
func waitReady(ctx context.Context, pl pipeline) error {
	for !pl.ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: waiting for %s to be assigned its partitions: %w", pl.group(), ctx.Err())
		case <-pl.finished():
			return stoppedEarly(pl)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 4096; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
