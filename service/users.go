package service

import (
	"time"

	"github.com/bulwark-go/bulwark/service/user"
	"github.com/google/uuid"
)

// UserPublic is the API's view of a user (CONTRACT §1).
type UserPublic struct {
	ID          uuid.UUID `json:"id"`
	Email       string    `json:"email"`
	FullName    *string   `json:"full_name"`
	IsActive    bool      `json:"is_active"`
	IsSuperuser bool      `json:"is_superuser"`
	CreatedAt   time.Time `json:"created_at"`
}

// publicOf returns the client-safe view of u.
func publicOf(u user.User) UserPublic {
	return UserPublic{ID: u.ID, Email: u.Email, FullName: u.FullName, IsActive: u.IsActive,
		IsSuperuser: u.IsSuperuser, CreatedAt: u.CreatedAt}
}
