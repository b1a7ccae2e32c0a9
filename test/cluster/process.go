package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a child process that logs to a file and dies with its parent.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done is closed
}

// StartProcess runs bin with args, logging to dir/name.log. The child gets
// SIGKILL when this process dies, so that a panicking test binary leaves
// nothing behind; and its own process group, so that a Ctrl-C in a terminal
// reaches only the parent, which then stops the children in order.
func StartProcess(dir, name, bin string, args ...string) (*Process, error) {
	return startProcess(filepath.Join(dir, name+".log"), os.O_TRUNC, name, bin, args)
}

// Restart starts the command of p again, with the same arguments, once p has
// ended, appending to its log: a crashed or stopped process that comes back.
func (p *Process) Restart() (*Process, error) {
	select {
	case <-p.done:
	default:
		return nil, fmt.Errorf("restart %s (pid %d): it still runs", p.name, p.Pid())
	}
	return startProcess(p.log.Name(), os.O_APPEND, p.name, p.cmd.Path, p.cmd.Args[1:])
}

// startProcess runs bin, logging to logPath opened with mode (os.O_TRUNC or
// os.O_APPEND).
func startProcess(logPath string, mode int, name, bin string, args []string) (*Process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|mode, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// The kernel kills the child when the thread that started it ends. Go
	// ends a thread only when a goroutine locked to it (LockOSThread) exits
	// locked, which nothing here does; so in effect the child dies with the
	// test process, also when a panic skips every deferred Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &Process{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Name is the name the process was started with.
func (p *Process) Name() string { return p.name }

// Log is the path of the process's log file.
func (p *Process) Log() string { return p.log.Name() }

// Exited reports an error if the process has already ended.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited early (%v); the end of its log:\n%s", p.name, p.err, logTail(p.log.Name(), 20))
	default:
		return nil
	}
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end: a crash, which leaves
// no chance to clean up (a leader keeps its lease, connections break).
func (p *Process) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, p.Pid(), err)
	}
	<-p.done
	return nil
}

// Pause stops the process with SIGSTOP until Resume: it keeps its sockets
// open and answers nothing, as a process stuck on a disk or starved of CPU.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume lets a paused process run again (SIGCONT).
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

func (p *Process) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s %s (pid %d): %w", sig, p.name, p.Pid(), err)
	}
	return nil
}

// Stop sends SIGTERM and waits for the process to end, killing it after grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	<-p.done
	return nil
}

// FreePort asks the kernel for a free loopback port. Another process may take
// it before the child binds it; the child then fails to start and says so.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// logTail returns the last lines of a log file, to explain a failed start
// whose folder is about to be removed.
func logTail(path string, lines int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// statFields are the fields of /proc/<pid>/stat after the command name,
// which is in parentheses and may hold spaces: [0] is the state, [1] the
// parent's PID, [11] and [12] the user and system CPU time in clock ticks,
// [19] the start time in clock ticks after boot.
func statFields(pid int) ([]string, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields after the command name", pid, len(fields))
	}
	return fields, nil
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ), 100
// on every Linux architecture Go supports.
const clockTicks = 100

// CPUTime is the user and system CPU time process pid has used so far.
func CPUTime(pid int) (time.Duration, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// Alive reports whether process pid runs. A zombie does not: it has ended
// and only waits for its parent to collect it.
func Alive(pid int) bool {
	fields, err := statFields(pid)
	return err == nil && fields[0] != "Z" && fields[0] != "X"
}

// processStart is when pid started, in clock ticks after boot; with the PID it
// names one process, since PIDs are reused.
func processStart(pid int) (uint64, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return start, nil
}

// Descendants lists the processes below pid: its children, theirs, and so on.
func Descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if fields, err := statFields(p); err == nil {
			parent[p], _ = strconv.Atoi(fields[1])
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
