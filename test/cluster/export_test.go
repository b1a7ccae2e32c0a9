package cluster

// Internals that the tests of package cluster_test drive directly.
var (
	LockCluster     = lockCluster
	RemoveStaleDirs = removeStaleDirs
	ProcessStart    = processStart
)

// TempPrefix starts the name of every temporary cluster folder.
const TempPrefix = tempPrefix

// WriteOwner records process pid of this PID namespace, started at start, as
// the owner of dir.
func WriteOwner(dir string, pid int, start uint64) error {
	return writeOwnerFile(dir, owner{PID: pid, Start: start, PIDNamespace: pidNamespace()})
}

// WriteForeignOwner records a process of another PID namespace as the owner
// of dir.
func WriteForeignOwner(dir string, pid int) error {
	return writeOwnerFile(dir, owner{PID: pid, PIDNamespace: "pid:[1]"})
}

// ProcessState is the state letter of process pid: R, S, T (stopped), Z...
func ProcessState(pid int) (string, error) {
	fields, err := statFields(pid)
	if err != nil {
		return "", err
	}
	return fields[0], nil
}
