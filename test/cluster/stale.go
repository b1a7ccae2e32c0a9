package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// owner identifies the process that made a temporary cluster folder. The
// start time tells a reused PID from the process that wrote the file.
type owner struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// PIDNamespace names the PID namespace the PID belongs to: a process in
	// another one (a container sharing /tmp) cannot be looked up from here.
	PIDNamespace string `json:"pidNamespace"`
}

// pidNamespace names this process's PID namespace, such as "pid:[4026531836]".
func pidNamespace() string {
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return ns
}

// writeOwner records this process as the owner of dir.
func writeOwner(dir string) error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return fmt.Errorf("record the owner of %s: %w", dir, err)
	}
	return writeOwnerFile(dir, owner{PID: os.Getpid(), Start: start, PIDNamespace: pidNamespace()})
}

func writeOwnerFile(dir string, o owner) error {
	raw, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("record the owner of %s: %w", dir, err)
	}
	// Written aside and renamed: another Start that scans for stale folders
	// must never read half a file and take the folder for a dead process's.
	tmp := filepath.Join(dir, ownerFile+".tmp")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return fmt.Errorf("record the owner of %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ownerFile)); err != nil {
		return fmt.Errorf("record the owner of %s: %w", dir, err)
	}
	return nil
}

// removeStaleDirs removes the temporary cluster folders in parent that a
// process left behind when it died without Stop (a panic, a kill): its
// children die with it, its folder does not. It is best effort: a folder it
// cannot remove costs disk space, not correctness.
func removeStaleDirs(parent string, progress io.Writer) {
	dirs, err := filepath.Glob(filepath.Join(parent, tempPrefix+"*"))
	if err != nil {
		return
	}
	for _, dir := range dirs {
		if !staleDir(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(progress, "    remove stale cluster folder: %v\n", err)
			continue
		}
		fmt.Fprintf(progress, "    removed %s, left by a process that is gone\n", dir)
	}
}

// staleDir reports whether dir provably belongs to a dead Start of this user:
// it holds an owner file naming a process that no longer runs. A folder
// without one stays, since it may be one that another Start has just made and
// not yet claimed, or not the test bed's at all.
func staleDir(dir string) bool {
	info, err := os.Lstat(dir)
	if err != nil || !info.IsDir() {
		return false
	}
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return false
	}
	raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	var o owner
	if err := json.Unmarshal(raw, &o); err != nil || o.PID <= 0 || o.PIDNamespace != pidNamespace() {
		return false
	}
	start, err := processStart(o.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil:
		return false // cannot tell, so it is not provably dead
	default:
		return start != o.Start || !Alive(o.PID)
	}
}
