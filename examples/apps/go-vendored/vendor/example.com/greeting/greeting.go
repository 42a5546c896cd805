// Package greeting is a tiny module of the example's own, present only under vendor/ (there is no such module on
// any proxy): the app builds from vendor/modules.txt alone.
package greeting

// Hello greets name.
func Hello(name string) string {
	return "Hello from " + name + " (vendored)"
}
