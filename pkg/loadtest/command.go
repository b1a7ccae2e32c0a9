package loadtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sluice.dev/sluice/pkg/hooks"
)

const (
	// maxOutput is how much of a command's output is kept, from its end,
	// where a test runner sums up.
	maxOutput = 4 << 10
	// maxMessageLine bounds the output line that the answer's message
	// repeats, since sluice shows that message in the Canary's status.
	maxMessageLine = 200
	// waitDelay bounds the wait for a killed command's output to close.
	waitDelay = 5 * time.Second
)

// Command is a program that calls may run, by name, with fixed arguments: a
// call chooses the name, never the program or its arguments.
type Command struct {
	// Name is what a call's cmd metadata says.
	Name string
	// Path is the program, found on the PATH when the flag was parsed.
	Path string
	// Args are the program's arguments, the same for every call.
	Args []string
}

// Commands are the allowed commands by name. As a pflag.Value, each Set
// adds one, given as NAME=PROGRAM ARG...; the arguments are split at
// spaces, and quotes keep spaces in one, as in a shell, which is not run.
type Commands map[string]Command

var commandName = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$`)

// Set adds a command given as NAME=PROGRAM ARG..., with the program looked
// up now, so that a wrong path stops the load tester at start rather than
// failing a rollout later.
func (c *Commands) Set(value string) error {
	name, line, ok := strings.Cut(value, "=")
	if !ok || !commandName.MatchString(name) {
		return fmt.Errorf("%q is not NAME=PROGRAM ARG..., NAME being letters, digits, '-', '_' or '.'", value)
	}
	if _, dup := (*c)[name]; dup {
		return fmt.Errorf("command %s is given twice", name)
	}
	words, err := splitWords(line)
	if err != nil {
		return fmt.Errorf("command %s: %w", name, err)
	}
	if len(words) == 0 {
		return fmt.Errorf("command %s has no program", name)
	}
	path, err := exec.LookPath(words[0])
	if err != nil {
		return fmt.Errorf("command %s: %w", name, err)
	}
	if *c == nil {
		*c = Commands{}
	}
	(*c)[name] = Command{Name: name, Path: path, Args: words[1:]}
	return nil
}

// String lists the commands as NAME=PROGRAM ARG..., by name.
func (c *Commands) String() string {
	var out []string
	for _, name := range c.sorted() {
		cmd := (*c)[name]
		words := []string{strconv.Quote(cmd.Path)}
		for _, a := range cmd.Args {
			words = append(words, strconv.Quote(a))
		}
		out = append(out, name+"="+strings.Join(words, " "))
	}
	return strings.Join(out, ", ")
}

// Type names the form of the value in --help.
func (*Commands) Type() string { return "NAME=PROGRAM ARG..." }

func (c *Commands) sorted() []string {
	if c == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*c))
}

// names lists the allowed names for an error message.
func (c Commands) names() string {
	if len(c) == 0 {
		return "none, since the load tester was started without --command"
	}
	return strings.Join(c.sorted(), ", ")
}

// splitWords splits a command line at unquoted blanks. Single quotes keep
// everything until the next one; double quotes too, except that a backslash
// escapes a double quote or a backslash in them; a backslash outside quotes
// escapes the next character.
func splitWords(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
			continue
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			word.WriteString(line[i+1 : i+1+end])
			i += 1 + end
		case ch == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				word.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
		case ch == '\\':
			if i+1 == len(line) {
				return nil, fmt.Errorf("%q ends in a backslash", line)
			}
			i++
			word.WriteByte(line[i])
		default:
			word.WriteByte(ch)
		}
		inWord = true
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// command runs an allowed Command for a call.
type command struct {
	Command
	timeout time.Duration
}

// CommandResult is what a command did.
type CommandResult struct {
	// Name is the command's, as the call gave it.
	Name string `json:"name"`
	// ExitCode is the program's, -1 when it did not exit by itself.
	ExitCode int `json:"exitCode"`
	// Duration is how long it ran.
	Duration string `json:"duration"`
	// Output is the end of what it wrote, standard output and error
	// interleaved.
	Output string `json:"output"`
}

func (c *command) limit() time.Duration { return c.timeout }

func (c *command) describe() []any {
	return []any{"kind", "command", "command", c.Name, "timeout", c.timeout.String()}
}

// do runs the program without a shell, told of the call in its
// environment, and kills it at the timeout.
func (c *command) do(ctx context.Context, p *hooks.Payload) (bool, Answer) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(os.Environ(),
		"SLUICE_NAME="+p.Name,
		"SLUICE_NAMESPACE="+p.Namespace,
		"SLUICE_REVISION="+p.Revision,
		"SLUICE_PHASE="+string(p.Phase),
		"SLUICE_CANARY_WEIGHT="+strconv.Itoa(int(p.CanaryWeight)),
		"SLUICE_HOOK="+string(p.Type),
	)
	out := &tail{max: maxOutput}
	// One writer for both, so that exec writes to it from one goroutine.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	killGroup(cmd)
	began := time.Now()
	err := cmd.Run()
	r := &CommandResult{Name: c.Name, ExitCode: -1, Duration: time.Since(began).Round(time.Millisecond).String(), Output: out.String()}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	var msg string
	var exit *exec.ExitError
	switch {
	case err == nil:
		msg = fmt.Sprintf("command %s passed in %s", c.Name, r.Duration)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg = fmt.Sprintf("command %s did not end within its timeout of %s and was killed", c.Name, c.timeout)
	case errors.As(err, &exit):
		msg = fmt.Sprintf("command %s failed (%v) after %s", c.Name, exit, r.Duration)
	default:
		msg = fmt.Sprintf("command %s could not run: %v", c.Name, err)
	}
	if line := lastLine(r.Output); line != "" {
		msg += ": " + line
	}
	return err == nil, Answer{Message: msg, Command: r}
}

// lastLine is the output's last line that is not blank, cut short.
func lastLine(output string) string {
	lines := strings.Split(strings.TrimSpace(output), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > maxMessageLine {
		line = strings.ToValidUTF8(line[:maxMessageLine], "") + "..."
	}
	return line
}

// tail keeps the last max bytes written to it, in at most twice that
// memory: it moves what it keeps to the front only when the buffer is full,
// not at every write.
type tail struct {
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if n >= t.max {
		t.buf, p, t.cut = t.buf[:0], p[n-t.max:], true
	}
	if len(t.buf)+len(p) > 2*t.max {
		t.buf = t.buf[:copy(t.buf, t.buf[len(t.buf)+len(p)-t.max:])]
		t.cut = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String is what was kept, starting at a whole character, with "..." in
// front when the start was cut.
func (t *tail) String() string {
	b, cut := t.buf, t.cut
	if len(b) > t.max {
		b, cut = b[len(b)-t.max:], true
	}
	for len(b) > 0 && !utf8.RuneStart(b[0]) {
		b = b[1:]
	}
	if cut {
		return "..." + string(b)
	}
	return string(b)
}
