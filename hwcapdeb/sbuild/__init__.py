"""sbuild: the builder that runs a clean chroot, its chroot tarballs, the ~/.sbuildrc
snippet and the hooks that snippet runs inside sbuild."""
