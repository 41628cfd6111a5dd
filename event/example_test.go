package event_test

import (
	"encoding/json"
	"fmt"

	"github.com/cairnhq/cairn/event"
)

// TodoAdded is the current shape of an event whose first version stored
// the title under "name".
type TodoAdded struct {
	Title string `json:"title"`
}

func ExampleRegistry() {
	reg := event.NewRegistry(event.RegistryOptions{})
	// The persisted name is explicit; version 2 is the current shape.
	if err := event.RegisterVersion[TodoAdded](reg, "todo.added", 2); err != nil {
		panic(err)
	}
	// Data stored at version 1 is rewritten to version 2 on read.
	_ = reg.AddUpcaster("todo.added", 1, func(data []byte) ([]byte, error) {
		var v1 struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(TodoAdded{Title: v1.Name})
	})

	enc, _ := reg.Encode(TodoAdded{Title: "Buy milk"})
	fmt.Println(enc.Type, enc.SchemaVersion, string(enc.Data))

	old, _ := reg.Decode("todo.added", 1, []byte(`{"name":"Walk the dog"}`))
	fmt.Printf("%#v\n", old)

	_, err := reg.Decode("todo.removed", 1, []byte(`{}`))
	fmt.Println(err)
	// Output:
	// todo.added 2 {"title":"Buy milk"}
	// event_test.TodoAdded{Title:"Walk the dog"}
	// event: decode "todo.removed" (schema 1): event: unknown type
}
