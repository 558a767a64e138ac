package sqlstore_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/creditkit/credits/sqlstore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println(sqlstore.Prof.String())
	os.Exit(code)
}
