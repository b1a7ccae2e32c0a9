package shift

import "testing"

func TestThresholdValue(t *testing.T) {
	for _, tc := range []struct {
		text string
		want float64
		ok   bool
	}{
		{"99%", 99, true},
		{"99.5%", 99.5, true},
		{"500ms", 500, true},
		{"1.5s", 1500, true},
		{"", 0, false},
		{"fast", 0, false},
	} {
		got, ok := thresholdValue(tc.text)
		if got != tc.want || ok != tc.ok {
			t.Errorf("thresholdValue(%q) = %v, %v; want %v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}
