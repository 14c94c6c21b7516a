// Package deb holds the tests of what makes the gateway an appliance: the
// Debian package's description for nfpm (packaging/nfpm.yaml), its maintainer
// scripts, the systemd unit and the starting config (packaging/debian/), built by
// `make package` (scripts/package.sh). Its tests check the packages with
// the programs Debian checks them with: lintian, systemd-analyze, and a
// real install, removal and purge in a fresh Debian root.
package deb
