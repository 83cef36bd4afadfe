package main

import "strings"

// godebugSet returns env with the GODEBUG setting key set to value, keeping
// GODEBUG's other settings.
func godebugSet(env []string, key, value string) []string {
	var settings []string
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			for s := range strings.SplitSeq(v, ",") {
				if s != "" && !strings.HasPrefix(s, key+"=") {
					settings = append(settings, s)
				}
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GODEBUG="+strings.Join(append(settings, key+"="+value), ","))
}
