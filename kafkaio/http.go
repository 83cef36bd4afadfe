package kafkaio

import (
	"encoding/json"
	"errors"
	"net/http"
)

// StoreHandler serves reads of a key-value store over HTTP, for interactive
// queries from clients and other instances:
//
//	GET <path>?key=<key>[&stale=true]
//
// parseKey turns the key parameter into a key. With stale=true, an instance
// that keeps a standby replica of the key's partition answers from it
// (StoreReader.GetStale) instead of redirecting. The answers, with JSON
// bodies:
//
//   - 200 {"key": <key parameter>, "value": <the value, as encoding/json
//     encodes it>};
//   - 404 {"key": ..., "error": ...} when the store holds no value for the
//     key;
//   - 307 to the same path and query on the instance that holds the key
//     (StoreReader.Hosts), when it is another one: mount the handler at the
//     same path on every instance, and give each an AdvertisedAddr;
//   - 503 when no instance is known to hold the key now (a rebalance is
//     moving its partition) or the app is not running: retry;
//   - 400 when parseKey fails, 405 for a method other than GET and HEAD,
//     500 when the read fails.
func StoreHandler[K, V any](r *StoreReader[K, V], parseKey func(string) (K, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, queryAnswer{Error: "method not allowed"})
			return
		}
		param := req.URL.Query().Get("key")
		k, err := parseKey(param)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, queryAnswer{Key: param, Error: "bad key: " + err.Error()})
			return
		}
		get := r.Get
		if req.URL.Query().Get("stale") == "true" {
			get = r.GetStale
		}
		v, found, err := get(k)
		switch {
		case errors.Is(err, ErrNotLocal):
			active, _, herr := r.Hosts(k)
			if herr != nil || active == "" || active == r.a.cfg.advertisedAddr {
				writeJSON(w, http.StatusServiceUnavailable, queryAnswer{Key: param, Error: "no instance holds the key now: retry"})
				return
			}
			scheme := "http"
			if req.TLS != nil {
				scheme = "https"
			}
			http.Redirect(w, req, scheme+"://"+active+req.URL.RequestURI(), http.StatusTemporaryRedirect)
		case errors.Is(err, ErrNotRunning):
			writeJSON(w, http.StatusServiceUnavailable, queryAnswer{Key: param, Error: err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, queryAnswer{Key: param, Error: err.Error()})
		case !found:
			writeJSON(w, http.StatusNotFound, queryAnswer{Key: param, Error: "not found"})
		default:
			b, err := json.Marshal(v)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, queryAnswer{Key: param, Error: "encoding the value: " + err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, queryAnswer{Key: param, Value: b})
		}
	})
}

// queryAnswer is the JSON body of StoreHandler's answers.
type queryAnswer struct {
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, a queryAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}
