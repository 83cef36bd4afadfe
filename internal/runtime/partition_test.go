package runtime

import "testing"

// Vectors from Apache Kafka's own tests of Utils.murmur2.
func TestMurmur2KafkaVectors(t *testing.T) {
	cases := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, c := range cases {
		if got := Murmur2([]byte(c.in)); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPartitionForKeyInRange(t *testing.T) {
	for i := range 1000 {
		k := []byte{byte(i), byte(i >> 8), 0xff}
		if p := PartitionForKey(k, 7); p < 0 || p >= 7 {
			t.Fatalf("partition %d out of range", p)
		}
	}
}
