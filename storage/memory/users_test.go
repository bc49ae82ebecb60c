package memory_test

import (
	"testing"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func TestUsersContract(t *testing.T) {
	storagetest.RunUserStore(t, func(*testing.T) user.Store { return memory.NewUsers() })
}
