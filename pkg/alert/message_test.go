package alert

import (
	"testing"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

func TestSeverityOf(t *testing.T) {
	tests := []struct {
		reason  string
		warning bool
		want    canary.Severity
	}{
		{"RollingBack", true, canary.SeverityError},
		{"Failed", true, canary.SeverityError},
		{"Superseded", true, canary.SeverityError},
		{"Halted", true, canary.SeverityWarn},
		{"Blind", true, canary.SeverityWarn},
		{"Halted", false, canary.SeverityWarn},
		{"IntentIgnored", true, canary.SeverityWarn},
		{"NewRevision", false, canary.SeverityInfo},
		{"Advanced", false, canary.SeverityInfo},
		{"Promoted", false, canary.SeverityInfo},
		{"", false, canary.SeverityInfo},
	}
	for _, tt := range tests {
		if got := SeverityOf(tt.reason, tt.warning); got != tt.want {
			t.Errorf("SeverityOf(%q, %v) = %q, want %q", tt.reason, tt.warning, got, tt.want)
		}
	}
}

func TestWants(t *testing.T) {
	const info, warn, err = canary.SeverityInfo, canary.SeverityWarn, canary.SeverityError
	tests := []struct {
		least, sev canary.Severity
		want       bool
	}{
		{"", "", true},
		{"", info, true},
		{"", err, true},
		{info, "", true},
		{info, warn, true},
		{warn, info, false},
		{warn, "", false},
		{warn, warn, true},
		{warn, err, true},
		{err, warn, false},
		{err, err, true},
		{"loud", info, true},
		{err, "loud", false},
	}
	for _, tt := range tests {
		if got := Wants(tt.least, tt.sev); got != tt.want {
			t.Errorf("Wants(%q, %q) = %v, want %v", tt.least, tt.sev, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	rolledBack := Message{
		Namespace: "shop", Name: "web", Revision: "5d8f7c9b", Phase: canary.PhaseProgressing, CanaryWeight: 20,
		Severity: canary.SeverityError, Reason: "RollingBack", Text: "Rolling back web.shop failed checks threshold reached 2",
		FailingCheck: &canary.CheckStatus{Name: "request-success-rate", Verdict: canary.VerdictFailed, Unit: "%",
			Value: ptr.To(91.2345), Min: ptr.To(99.0), PrimaryValue: ptr.To(99.95)},
	}
	held := rolledBack
	held.heldBack = 3
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{
			name: "failing check with a min and the primary",
			m:    rolledBack,
			want: "shop/web RollingBack (error): Rolling back web.shop failed checks threshold reached 2\n" +
				"revision 5d8f7c9b, canary weight 20%, phase Progressing, failing check request-success-rate 91.23% (min 99%, primary 99.95%)\n" +
				"kubectl sluice status web -n shop",
		},
		{
			name: "alerts held back",
			m:    held,
			want: "shop/web RollingBack (error): Rolling back web.shop failed checks threshold reached 2\n" +
				"revision 5d8f7c9b, canary weight 20%, phase Progressing, failing check request-success-rate 91.23% (min 99%, primary 99.95%); " +
				"3 more held back since the last alert\n" +
				"kubectl sluice status web -n shop",
		},
		{
			name: "latency without data, a max",
			m: Message{Namespace: "shop", Name: "web", Revision: "abc", CanaryWeight: 5, Severity: canary.SeverityWarn, Reason: "Halted",
				FailingCheck: &canary.CheckStatus{Name: "request-duration", Unit: "ms", Max: ptr.To(25000.0)}},
			want: "shop/web Halted (warn)\n" +
				"revision abc, canary weight 5%, failing check request-duration no data (max 25000ms)\n" +
				"kubectl sluice status web -n shop",
		},
		{
			name: "no revision, no check, no severity",
			m:    Message{Namespace: "shop", Name: "web", Phase: canary.PhaseInitialized, Reason: "Initialized", Text: "Initialization done! web.shop"},
			want: "shop/web Initialized (info): Initialization done! web.shop\n" +
				"canary weight 0%, phase Initialized\n" +
				"kubectl sluice status web -n shop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Summary(); got != tt.want {
				t.Errorf("Summary():\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
