package kafkaio

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestWaitTopics checks that waitTopics polls the brokers themselves until
// every new topic has all its partitions led: the embedded cluster answers
// the first metadata requests naming the topic as a broker that has not
// elected its leaders yet (LEADER_NOT_AVAILABLE), as a real broker can just
// after CreateTopics.
func TestWaitTopics(t *testing.T) {
	ctx := context.Background()
	e, err := StartEmbedded(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := CreateTopics(ctx, e.Seeds(), 3, []string{"fresh"}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	brokers, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// notLed answers a metadata request for topic as a broker without
	// leaders for it, while notReady (the number of such answers left) is
	// positive; asked counts the requests naming topic.
	var notReady, asked atomic.Int32
	e.Cluster().ControlKey(kmsg.Metadata.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster().KeepControl()
		mreq := req.(*kmsg.MetadataRequest)
		named := false
		for _, rt := range mreq.Topics {
			named = named || (rt.Topic != nil && *rt.Topic == "fresh")
		}
		if !named {
			return nil, nil, false
		}
		asked.Add(1)
		if notReady.Add(-1) < 0 {
			return nil, nil, false
		}
		resp := mreq.ResponseKind().(*kmsg.MetadataResponse)
		for _, b := range brokers.Brokers {
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID, mb.Host, mb.Port = b.NodeID, b.Host, b.Port
			resp.Brokers = append(resp.Brokers, mb)
		}
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr("fresh")
		rt.ErrorCode = kerr.LeaderNotAvailable.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})

	notReady.Store(3)
	if err := waitTopics(ctx, cl, []string{"fresh"}, map[string]int32{"fresh": 3}); err != nil {
		t.Fatal(err)
	}
	if got := asked.Load(); got != 4 {
		t.Errorf("waitTopics asked for the topic's metadata %d times, want 4 (3 without leaders, then led)", got)
	}

	// A topic that never gets its leaders: waitTopics gives up with the
	// context, naming it.
	notReady.Store(1 << 30)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = waitTopics(short, cl, []string{"fresh"}, map[string]int32{"fresh": 3})
	if err == nil || !strings.Contains(err.Error(), "fresh") {
		t.Errorf("waitTopics on a topic without leaders: %v, want an error naming it", err)
	}
}
