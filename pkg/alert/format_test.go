package alert

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

// failed is an alert about a rollback, with every part a card can show.
var failed = Message{
	Namespace: "shop", Name: "web", Revision: "5d8f7c9b", Phase: canary.PhaseFailed, CanaryWeight: 20,
	Severity: canary.SeverityError, Reason: "RollingBack", Text: "Rolling back web.shop: <none> of the checks & pass",
	FailingCheck: &canary.CheckStatus{Name: "request-success-rate", Verdict: canary.VerdictFailed, Unit: "%",
		Value: ptr.To(91.2), Min: ptr.To(99.0), PrimaryValue: ptr.To(99.95), Message: "request-success-rate: 91.2% < 99%"},
	Time:     time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
	heldBack: 2,
}

const (
	wantCheck   = "request-success-rate 91.2% (min 99%, primary 99.95%)"
	wantCommand = "kubectl sluice status web -n shop"
	wantNote    = "2 more held back since the last alert"
)

// len16 is the length of s as Discord and Slack count it.
func len16(s string) int { return len(utf16.Encode([]rune(s))) }

func TestProviderBodies(t *testing.T) {
	huge := failed
	huge.Name = strings.Repeat("w", 253)
	huge.Text = strings.Repeat("é😀", 5000)
	huge.FailingCheck = &canary.CheckStatus{Name: strings.Repeat("c", 2000), Verdict: canary.VerdictFailed}
	tests := []struct {
		name     string
		provider canary.AlertProvider
		m        Message
		check    func(t *testing.T, body map[string]any)
	}{
		{
			name: "slack: Block Kit with a text fallback", provider: canary.AlertSlack, m: failed,
			check: func(t *testing.T, b map[string]any) {
				if text := at[string](t, b, "text"); !strings.Contains(text, "&lt;none&gt; of the checks &amp; pass") || !strings.Contains(text, wantCommand) {
					t.Errorf("text %q is not the escaped summary", text)
				}
				blocks := at[[]any](t, b, "blocks")
				if len(blocks) != 3 {
					t.Fatalf("%d blocks, want header, section, context", len(blocks))
				}
				for i, typ := range []string{"header", "section", "context"} {
					if got := at[string](t, blocks, i, "type"); got != typ {
						t.Errorf("block %d is a %s, want a %s", i, got, typ)
					}
				}
				if typ := at[string](t, blocks, 0, "text", "type"); typ != "plain_text" {
					t.Errorf("header text is %s, want plain_text", typ)
				}
				if title := at[string](t, blocks, 0, "text", "text"); title != "shop/web RollingBack (error)" {
					t.Errorf("header %q", title)
				}
				if typ := at[string](t, blocks, 1, "text", "type"); typ != "mrkdwn" {
					t.Errorf("section text is %s, want mrkdwn", typ)
				}
				if text := at[string](t, blocks, 1, "text", "text"); text != "Rolling back web.shop: &lt;none&gt; of the checks &amp; pass" {
					t.Errorf("section text %q", text)
				}
				fields := at[[]any](t, blocks, 1, "fields")
				if len(fields) != 4 {
					t.Fatalf("%d fields, want revision, weight, phase, check", len(fields))
				}
				if f := at[string](t, fields, 3, "text"); f != "*Failing check*\n"+wantCheck {
					t.Errorf("field %q", f)
				}
				if typ := at[string](t, fields, 3, "type"); typ != "mrkdwn" {
					t.Errorf("field type %s, want mrkdwn", typ)
				}
				if c := at[string](t, blocks, 2, "elements", 0, "text"); c != "`"+wantCommand+"`" {
					t.Errorf("context %q", c)
				}
				if c := at[string](t, blocks, 2, "elements", 1, "text"); c != wantNote {
					t.Errorf("context %q", c)
				}
			},
		},
		{
			name: "msteams: an Adaptive Card 1.4 in a message", provider: canary.AlertMSTeams, m: failed,
			check: func(t *testing.T, b map[string]any) {
				if typ := at[string](t, b, "type"); typ != "message" {
					t.Errorf("type %q, want message", typ)
				}
				if n := len(at[[]any](t, b, "attachments")); n != 1 {
					t.Fatalf("%d attachments, want 1", n)
				}
				a := at[map[string]any](t, b, "attachments", 0)
				if ct := at[string](t, a, "contentType"); ct != "application/vnd.microsoft.card.adaptive" {
					t.Errorf("contentType %q", ct)
				}
				if url, ok := a["contentUrl"]; !ok || url != nil {
					t.Errorf("contentUrl %v, want null", url)
				}
				card := at[map[string]any](t, a, "content")
				for key, want := range map[string]string{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4"} {
					if got := at[string](t, card, key); got != want {
						t.Errorf("%s %q, want %q", key, got, want)
					}
				}
				body := at[[]any](t, card, "body")
				var texts []string
				facts := map[string]string{}
				for i := range body {
					switch typ := at[string](t, body, i, "type"); typ {
					case "TextBlock":
						texts = append(texts, at[string](t, body, i, "text"))
						if !at[bool](t, body, i, "wrap") {
							t.Errorf("TextBlock %d does not wrap", i)
						}
					case "FactSet":
						for j := range at[[]any](t, body, i, "facts") {
							facts[at[string](t, body, i, "facts", j, "title")] = at[string](t, body, i, "facts", j, "value")
						}
					default:
						t.Errorf("element %d is a %s", i, typ)
					}
				}
				if at[string](t, body, 0, "color") != "attention" {
					t.Errorf("an error's title is not colored attention")
				}
				wantTexts := []string{"shop/web RollingBack (error)", failed.Text, wantNote, wantCommand}
				if strings.Join(texts, "|") != strings.Join(wantTexts, "|") {
					t.Errorf("TextBlocks %q, want %q", texts, wantTexts)
				}
				wantFacts := map[string]string{"Revision": "5d8f7c9b", "Canary weight": "20%", "Phase": "Failed", "Failing check": wantCheck}
				for k, v := range wantFacts {
					if facts[k] != v {
						t.Errorf("fact %s = %q, want %q", k, facts[k], v)
					}
				}
			},
		},
		{
			name: "discord: content and an embed", provider: canary.AlertDiscord, m: failed,
			check: func(t *testing.T, b map[string]any) {
				if c := at[string](t, b, "content"); c != "shop/web RollingBack (error)" {
					t.Errorf("content %q", c)
				}
				e := at[map[string]any](t, b, "embeds", 0)
				if title := at[string](t, e, "title"); title != "shop/web RollingBack (error)" {
					t.Errorf("title %q", title)
				}
				if d := at[string](t, e, "description"); d != failed.Text {
					t.Errorf("description %q", d)
				}
				if c := at[float64](t, e, "color"); c != 0xDC2626 {
					t.Errorf("color %v, want red", c)
				}
				if ts := at[string](t, e, "timestamp"); ts != "2026-03-01T12:30:00Z" {
					t.Errorf("timestamp %q", ts)
				}
				if f := at[string](t, e, "footer", "text"); f != wantNote {
					t.Errorf("footer %q", f)
				}
				fields := map[string]string{}
				for i := range at[[]any](t, e, "fields") {
					name := at[string](t, e, "fields", i, "name")
					fields[name] = at[string](t, e, "fields", i, "value")
					if inline := at[bool](t, e, "fields", i, "inline"); inline != (name != "Failing check") {
						t.Errorf("field %s inline %v", name, inline)
					}
				}
				if fields["Failing check"] != wantCheck || fields["Look"] != "`"+wantCommand+"`" || fields["Canary weight"] != "20%" {
					t.Errorf("fields %v", fields)
				}
			},
		},
		{
			name: "discord: the limits hold", provider: canary.AlertDiscord, m: huge,
			check: func(t *testing.T, b map[string]any) {
				e := at[map[string]any](t, b, "embeds", 0)
				within := func(what, s string, max int) {
					if n := len16(s); n > max {
						t.Errorf("%s is %d characters, more than %d", what, n, max)
					}
				}
				within("content", at[string](t, b, "content"), discordContentMax)
				within("title", at[string](t, e, "title"), discordTitleMax)
				within("description", at[string](t, e, "description"), discordDescriptionMax)
				total := len16(at[string](t, e, "title")) + len16(at[string](t, e, "description")) + len16(at[string](t, e, "footer", "text"))
				for i := range at[[]any](t, e, "fields") {
					name, value := at[string](t, e, "fields", i, "name"), at[string](t, e, "fields", i, "value")
					within("field "+name, value, discordFieldValueMax)
					total += len16(name) + len16(value)
				}
				for _, cut := range []string{at[string](t, e, "title"), at[string](t, e, "description")} {
					if !strings.HasSuffix(cut, "…") {
						t.Errorf("%.20q... was cut without an ellipsis", cut)
					}
				}
				if total > discordEmbedMax {
					t.Errorf("the embed is %d characters, more than %d", total, discordEmbedMax)
				}
			},
		},
		{
			name: "generic: sluice's own JSON", provider: canary.AlertGeneric, m: failed,
			check: func(t *testing.T, b map[string]any) {
				strs := map[string]string{
					"apiVersion": APIVersion, "name": "web", "namespace": "shop", "revision": "5d8f7c9b", "phase": "Failed",
					"severity": "error", "reason": "RollingBack", "message": failed.Text, "command": wantCommand,
					"time": "2026-03-01T12:30:00Z",
				}
				for k, want := range strs {
					if got := at[string](t, b, k); got != want {
						t.Errorf("%s %q, want %q", k, got, want)
					}
				}
				if w := at[float64](t, b, "canaryWeight"); w != 20 {
					t.Errorf("canaryWeight %v", w)
				}
				if h := at[float64](t, b, "heldBack"); h != 2 {
					t.Errorf("heldBack %v", h)
				}
				c := at[map[string]any](t, b, "failingCheck")
				if at[string](t, c, "name") != "request-success-rate" || at[string](t, c, "verdict") != "Failed" || at[string](t, c, "unit") != "%" {
					t.Errorf("failingCheck %v", c)
				}
				if at[float64](t, c, "value") != 91.2 || at[float64](t, c, "min") != 99 || at[float64](t, c, "primaryValue") != 99.95 {
					t.Errorf("failingCheck %v", c)
				}
				if _, ok := c["max"]; ok {
					t.Errorf("failingCheck has a max: %v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, ok)
			n, _ := newNotifier(t)
			n.Notify(t.Context(), []ResolvedAlert{alertTo(r, "team", tt.provider, "", nil)}, tt.m)
			n.Close(context.Background())
			got := r.got()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			if got[0].contentType != "application/json" {
				t.Errorf("Content-Type %q", got[0].contentType)
			}
			if count(n, tt.provider, resultSent) != 1 {
				t.Errorf("not counted sent")
			}
			tt.check(t, got[0].body)
		})
	}
}

func TestGenericDropsNumbersJSONCannotHold(t *testing.T) {
	m := failed
	m.FailingCheck = &canary.CheckStatus{Name: "errors", Value: ptr.To(math.Inf(1)), Max: ptr.To(1.0)}
	b, err := body(canary.AlertGeneric, m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"failingCheck":{"name":"errors","verdict":"","max":1}`) {
		t.Errorf("body %s", b)
	}
}

func TestUnknownProvider(t *testing.T) {
	if _, err := body("pager", failed); err == nil || err.Error() != `unknown provider "pager"; use slack, msteams, discord or generic` {
		t.Errorf("error %v", err)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{"short", "abc", 3, "abc"},
		{"cut", "abcdef", 4, "abc…"},
		{"two-byte runes count one", "ééééé", 3, "éé…"},
		{"astral runes count two", "😀😀😀", 5, "😀😀…"},
		{"an astral rune is not split", "a😀b", 3, "a…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.s, tt.n)
			if got != tt.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
			if units := len(utf16.Encode([]rune(got))); units > tt.n {
				t.Errorf("truncate(%q, %d) is %d UTF-16 units long", tt.s, tt.n, units)
			}
			if strings.Contains(got, "\uFFFD") {
				t.Errorf("truncate(%q, %d) = %q split a rune", tt.s, tt.n, got)
			}
		})
	}
}
