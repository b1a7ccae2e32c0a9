package cluster

// Internals that the tests of package cluster_test drive directly.
var (
	LockCluster     = lockCluster
	RemoveStaleDirs = removeStaleDirs
	ProcessStart    = processStart
)

// TempPrefix starts the name of every temporary cluster folder.
const TempPrefix = tempPrefix

// WriteOwner records process pid, started at start, as the owner of dir.
func WriteOwner(dir string, pid int, start uint64) error {
	return writeOwnerFile(dir, owner{PID: pid, Start: start})
}
