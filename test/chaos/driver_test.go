package main

import "testing"

// TestUndoTemplate pins what the suite takes an undo to have sent, from the
// Deployment before it and the first version after.
func TestUndoTemplate(t *testing.T) {
	base := version{primary: "1.11", optedIn: true}
	tests := []struct {
		name     string
		base, v  version
		template string
		result   result
	}{
		{"diverted by the webhook", base,
			version{primary: "1.11", pendingTemplate: "1.6", pendingRevision: "r6", optedIn: true}, "1.6", diverted},
		{"plain: back to a version that ran with skip-analysis", base,
			version{primary: "1.6", skip: true, optedIn: true}, "1.6", plain},
		{"plain with skip-analysis, the webhook down: the canary annotations restored from the ReplicaSet are left over", base,
			version{primary: "1.6", pendingTemplate: "1.10", pendingRevision: "r10", skip: true, optedIn: true}, "1.6", plain},
		{"plain with opt-out, the webhook down", base,
			version{primary: "1.6", pendingTemplate: "1.10", pendingRevision: "r10"}, "1.6", plain},
		{"not yet: only the shifter's status of the old state", base,
			version{primary: "1.11", optedIn: true}, "", 0},
		{"not the undo: the pending canary promoted", version{primary: "1.11", pendingTemplate: "1.12", optedIn: true},
			version{primary: "1.12", optedIn: true}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := undoTemplate(tt.base, tt.v)
			if got != tt.template {
				t.Fatalf("undoTemplate = %q, want %q", got, tt.template)
			}
			if got == "" {
				return
			}
			u := &update{line: line{act: undo}, template: got}
			if r := classify(u, tt.v); r != tt.result {
				t.Errorf("classify = %v, want %v", r, tt.result)
			}
		})
	}
}
