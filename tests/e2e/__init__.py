"""End-to-end tests. A package, so that the four services they share (`running_services`,
package-scoped) stop when its last test ends, before other folders' tests use the broker."""
