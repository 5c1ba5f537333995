// Package architecture holds the test that keeps cairn's rooms and arrows as
// docs/architecture.md draws them: it reads the table of that document, so
// the map and the test can never disagree. It has no code of its own.
package architecture
