package hooks

import (
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	key, body := []byte("s3cret"), []byte(`{"apiVersion":"sluice.dev/hooks/v1"}`)
	at := time.Unix(1_800_000_000, 0)
	sig := Sign(key, body, at)
	tests := []struct {
		name   string
		key    []byte
		body   []byte
		header string
		now    time.Time
		err    string
	}{
		{"valid", key, body, sig, at.Add(time.Minute), ""},
		{"rotated key: one of two signatures matches", key, body, sig + ",v1=00ff", at, ""},
		{"wrong key", []byte("other"), body, sig, at, "does not match"},
		{"body changed", key, []byte(`{}`), sig, at, "does not match"},
		{"replayed late", key, body, sig, at.Add(10 * time.Minute), "more than 5m0s from now"},
		{"not a signature", key, body, "sha256=abc", at, "is not t=UNIX,v1=HEX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.key, tt.body, tt.header, tt.now, 5*time.Minute)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Verify = %v, want an error with %q", err, tt.err)
			}
		})
	}
}
