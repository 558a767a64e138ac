//go:build race

package sqlstore_test

const raceBuild = true
