package hooks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeSnippet is the shell snippet of the README that checks a signature.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- verify-signature -->\n```bash\n")
	snippet, _, closed := strings.Cut(after, "```")
	if !ok || !closed {
		t.Fatal("the README has no ```bash block after <!-- verify-signature -->")
	}
	return snippet
}

// TestReadmeSnippetVerifiesSignatures runs the README's shell snippet on
// requests that Sign signed, and on ones it did not.
func TestReadmeSnippetVerifiesSignatures(t *testing.T) {
	snippet := readmeSnippet(t)
	body := []byte(`{"apiVersion":"sluice.dev/hooks/v1","id":"x","type":"rollout"}` + "\n")
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	key, now := []byte("s3cret"), time.Now()
	tests := []struct {
		name      string
		key       string
		signature string
		valid     bool
	}{
		{"signed now", "s3cret", Sign(key, body, now), true},
		{"another key", "other", Sign(key, body, now), false},
		{"another body", "s3cret", Sign(key, []byte(`{}`), now), false},
		{"ten minutes old", "s3cret", Sign(key, body, now.Add(-10*time.Minute)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "bash", "-c", snippet)
			cmd.Env = append(os.Environ(), "SIGNATURE="+tt.signature, "KEY="+tt.key, "BODY_FILE="+file)
			out, err := cmd.CombinedOutput()
			if valid := err == nil; valid != tt.valid {
				t.Errorf("the snippet says valid %t (%v: %s); want %t", valid, err, out, tt.valid)
			}
		})
	}
}
