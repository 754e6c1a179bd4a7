// Command badhandshake prints garbage where a plugin's handshake belongs.
package main

import (
	"fmt"
	"time"
)

func main() {
	fmt.Println("hello, I am not a plugin")
	time.Sleep(30 * time.Second)
}
