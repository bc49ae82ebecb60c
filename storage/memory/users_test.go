package memory_test

import (
	"testing"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func TestUsersContract(t *testing.T) {
	storagetest.RunUserStore(t, func(*testing.T) service.UserStore { return memory.NewUsers() })
}
