package cluster

// Internals that the tests of package cluster_test drive directly.
var LockCluster = lockCluster
