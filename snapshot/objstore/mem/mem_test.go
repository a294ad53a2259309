package mem_test

import (
	"testing"

	"amber/snapshot/objstore"
	"amber/snapshot/objstore/mem"
	"amber/snapshot/objstore/objtest"
)

func TestAcceptance(t *testing.T) {
	objtest.AcceptanceTest(t, mem.New())
}

func TestAcceptancePrefixed(t *testing.T) {
	objtest.AcceptanceTest(t, objstore.WithPrefix(mem.New(), "/some/prefix/"))
}
