package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sign returns the value of HeaderSignature for body, sent at t.
func Sign(key, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a HeaderSignature value against body and key: the MAC must
// match, and the time it names must be within tolerance of now, so that a
// recorded request cannot be replayed later.
func Verify(key, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sums [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sum, err := hex.DecodeString(v); err == nil {
				sums = append(sums, sum)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sums) == 0 {
		return fmt.Errorf("%s %q is not t=UNIX,v1=HEX", HeaderSignature, header)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%s was made at %s, more than %s from now", HeaderSignature, time.Unix(sec, 0).UTC().Format(time.RFC3339), tolerance)
	}
	want := mac(key, ts, body)
	for _, sum := range sums {
		if hmac.Equal(sum, want) {
			return nil
		}
	}
	return errors.New("the signature does not match the body under this key")
}
