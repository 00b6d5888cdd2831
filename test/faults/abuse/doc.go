// Package abuse is part 2 of the fault suite: hostile registry Secrets,
// MyResources the members refuse, a second writer fighting over owned
// objects, a burst of MyResources, all against real API servers and the real
// operator binary. The tests assert what a user would check: statuses,
// registry health annotations, member objects, audit counts and logs.
package abuse
