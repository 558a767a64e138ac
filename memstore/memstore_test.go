package memstore_test

import (
	"testing"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) credits.Store { return memstore.New() })
}
