package pebblestore_test

import "os"

func writeFile(path string) error { return os.WriteFile(path, []byte("bbolt"), 0o600) }
