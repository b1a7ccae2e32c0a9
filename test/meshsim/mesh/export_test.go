package mesh

// What the integration tests (package mesh_test, which has the cluster)
// reach inside the package for.
var (
	NewCacheWithHTTPRoutes = newCache
	Serves                 = serves
)
