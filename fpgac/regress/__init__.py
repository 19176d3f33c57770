"""fpgac in regression suites and design-space sweeps: JUnit results of ``verify``, comparison
of a new compile with a stored baseline, the pytest plugin and its manifests, and ``sweep``."""
