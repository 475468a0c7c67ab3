package verify_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/verify"
)

func ExampleSigner_Sign() {
	s, err := verify.NewSigner([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleVerifier_Verify() {
	v, err := verify.New(verify.Settings{
		Kind:    verify.KindToken,
		Header:  "Authorization",
		Secrets: []string{"old-token-2024", "new-token-2025"}, // mid-rotation
	})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer new-token-2025")
	fmt.Println(v.Verify(h, nil, nil, time.Now()))

	h.Set("Authorization", "Bearer guess")
	err = v.Verify(h, nil, nil, time.Now())
	fmt.Printf("%s: %v\n", verify.Reason(err), err)
	// Output:
	// <nil>
	// mismatch: token in header "Authorization" matches no secret
}
