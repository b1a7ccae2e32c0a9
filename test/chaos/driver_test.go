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

// TestShownPromoted: the answer to a later update shows a canary promoted
// that the watches missed; a plain rollout or another canary of the same
// template ends the search.
func TestShownPromoted(t *testing.T) {
	u := &update{result: diverted, template: "0.1", pendingTemplate: "0.1", primary: "0.0", rv: 635}
	tests := []struct {
		name  string
		later []*update
		want  bool
	}{
		{"the next canary's answer shows it as the primary",
			[]*update{{result: diverted, template: "0.2", pendingTemplate: "0.2", primary: "0.1", rv: 1175}}, true},
		{"no answer shows it",
			[]*update{{result: diverted, template: "0.2", pendingTemplate: "0.2", primary: "0.0", rv: 1175}}, false},
		{"a plain rollout of the same template comes first",
			[]*update{{result: plain, template: "0.1", primary: "0.1", rv: 900}, {result: passed, primary: "0.1", rv: 1000}}, false},
		{"an undo diverts the same template again first",
			[]*update{{result: diverted, template: "0.1", pendingTemplate: "0.1", primary: "0.0", rv: 900},
				{result: diverted, template: "0.3", pendingTemplate: "0.3", primary: "0.1", rv: 1000}}, false},
		{"a scale's answer shows it",
			[]*update{{result: passed, primary: "0.1", rv: 700}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shownPromoted(u, tt.later); got != tt.want {
				t.Errorf("shownPromoted = %t; want %t", got, tt.want)
			}
		})
	}
}
