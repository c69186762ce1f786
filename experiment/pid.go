package experiment

import "os"

// pidTag keeps lab names of two matrix runs on one machine apart.
func pidTag() int { return os.Getpid() & 0xfffff }
