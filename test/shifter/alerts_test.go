package shifter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/cluster"
	"sluice.dev/sluice/test/meshsim/telemetry"
	"sluice.dev/sluice/test/sluice"
)

// closedURL is the URL of a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/alerts"
}

// TestAlertsByProviderAndSeverity: a failing canary is told to Slack (every
// phase change), Teams (warnings and failures) and Discord (failures only),
// each in its provider's shape with the command to look; a generic
// receiver that is down holds up nothing and is counted as failed.
func TestAlertsByProviderAndSeverity(t *testing.T) {
	setup(t)
	ns := env.NewNamespace(t)
	c := newClient(t)
	rcv := sluice.NewReceiver(t, nil)
	mesh.Set(ns, app+"-canary", telemetry.Behaviour{ErrorRate: 0.5, Latency: 20 * time.Millisecond})
	kubectlApply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: chat
  namespace: %[1]s
stringData:
  slack: %[2]s/slack
  teams: %[2]s/teams
  discord: %[2]s/discord
  generic: %[3]s
---
%[4]s  alerts:
  - {name: team-slack, provider: slack, addressSecret: {name: chat, key: slack}}
  - {name: oncall-teams, provider: msteams, severity: warn, addressSecret: {name: chat, key: teams}}
  - {name: failures, provider: discord, severity: error, addressSecret: {name: chat, key: discord}}
  - {name: audit, provider: generic, addressSecret: {name: chat, key: generic}}
`, ns, rcv.URL, closedURL(t), quickPolicy("CanaryPolicy", "alerted", "20, 40, 60, 80")))
	grantSecrets(t, ns)
	kubectlApply(t, ns, policyManifest("example.com/web:v1", "alerted"))
	waitPhase(t, c, ns, canary.PhaseInitialized, 30*time.Second)
	kubectlApply(t, ns, policyManifest("example.com/web:v2", "alerted"))
	waitPhase(t, c, ns, canary.PhaseFailed, 2*time.Minute)

	command := "kubectl sluice status web -n " + ns
	cluster.Eventually(t, 30*time.Second, "the alerts", func(context.Context) error {
		slack, teams, discord := rcv.Calls("slack"), rcv.Calls("teams"), rcv.Calls("discord")
		switch {
		case len(slack) < 2:
			return fmt.Errorf("%d Slack messages; want the new revision and the rollback", len(slack))
		case len(discord) != 1:
			return fmt.Errorf("%d Discord messages; want the rollback alone", len(discord))
		case len(teams) == 0:
			return fmt.Errorf("no Teams message; want the rollback")
		}
		return nil
	})

	var s struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
		} `json:"blocks"`
	}
	slack := rcv.Calls("slack")
	decode(t, slack[0].Body, &s)
	if !strings.Contains(s.Text, "New revision") || len(s.Blocks) == 0 {
		t.Errorf("first Slack message %s; want the new revision, in blocks", slack[0].Body)
	}
	decode(t, slack[len(slack)-1].Body, &s)
	if !strings.Contains(s.Text, "Rolling back") || !strings.Contains(string(slack[len(slack)-1].Body), command) {
		t.Errorf("last Slack message %s; want the rollback and %q", slack[len(slack)-1].Body, command)
	}

	var teams struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string `json:"type"`
				Version string `json:"version"`
			} `json:"content"`
		} `json:"attachments"`
	}
	for _, m := range rcv.Calls("teams") {
		decode(t, m.Body, &teams)
		if teams.Type != "message" || len(teams.Attachments) != 1 || teams.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" ||
			teams.Attachments[0].Content.Type != "AdaptiveCard" {
			t.Errorf("Teams message %s; want an Adaptive Card", m.Body)
		}
		if strings.Contains(string(m.Body), "New revision") {
			t.Errorf("Teams, for warnings and failures, was told of the new revision: %s", m.Body)
		}
	}

	var discord struct {
		Embeds []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Color       int    `json:"color"`
		} `json:"embeds"`
	}
	decode(t, rcv.Calls("discord")[0].Body, &discord)
	if len(discord.Embeds) != 1 || !strings.Contains(discord.Embeds[0].Description+discord.Embeds[0].Title, "Rolling back") {
		t.Errorf("Discord message %s; want the rollback in an embed", rcv.Calls("discord")[0].Body)
	}

	cluster.Eventually(t, 30*time.Second, "the failed generic alerts counted", func(context.Context) error {
		families, err := sluice.Metrics(shifter.MetricsPort)
		if err != nil {
			return err
		}
		for _, m := range families["sluice_alerts_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == "generic" && labels["result"] == "failed" && m.GetCounter().GetValue() >= 1 {
				return nil
			}
		}
		return fmt.Errorf("no sluice_alerts_total{provider=generic,result=failed}: %v", families["sluice_alerts_total"])
	})
}

func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
}
