// A net/http server whose one dependency is vendored: it builds with -mod=vendor and no network.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"

	"example.com/greeting"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"app":     "go-vendored",
			"message": greeting.Hello("GoldenPath"),
		})
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
