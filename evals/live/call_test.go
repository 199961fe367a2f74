package live

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gitlab.com/acme/voice-agent/evals/replay"
)

// wav writes a WAV file of PCM samples.
func wav(t *testing.T, rate uint32, channels uint16, pcm []byte) string {
	t.Helper()
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(36+len(pcm)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels)*2)
	b = binary.LittleEndian.AppendUint16(b, channels*2)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pcm)))
	b = append(b, pcm...)
	p := filepath.Join(t.TempDir(), "a.wav")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// TestCallModelSendsTheAcceptedSessionAndCallerAudio: the live model is
// configured with the session object the agent accepted the call with
// (text output, VAD off), and a turn with an audio file reaches the API as
// input_audio_buffer.append (the file's samples, base64) and commit.
func TestCallModelSendsTheAcceptedSessionAndCallerAudio(t *testing.T) {
	f := &fakeRealtime{}
	c, _ := newServer(t, f)
	pcm := make([]byte, 3*SampleRate) // 1.5 s: six append chunks of 0.25 s
	for i := range pcm {
		pcm[i] = byte(i)
	}
	m := NewCallModel(c, "gpt-realtime")
	m.Audio = map[string]string{"I need help": wav(t, SampleRate, 1, pcm)}
	accepted := json.RawMessage(`{"type":"realtime","model":"gpt-realtime","instructions":"Be the clinic's receptionist.","output_modalities":["audio"],"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"turn_detection":{"type":"server_vad"}}},"tools":[]}`)
	outs, err := m.Respond(context.Background(), replay.Request{Session: accepted, Conversation: []replay.Item{{Type: "message", Role: "user", Text: "I need help"}}})
	require.NoError(t, err)
	require.Len(t, outs, 1)
	assert.Equal(t, "book_appointment", outs[0].FunctionCall.Name)
	require.NoError(t, m.Close())

	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.sessions, 1)
	assert.Equal(t, "Be the clinic's receptionist.", f.sessions[0]["instructions"])
	assert.Equal(t, []any{"text"}, f.sessions[0]["output_modalities"])
	in := f.sessions[0]["audio"].(map[string]any)["input"].(map[string]any)
	assert.Nil(t, in["turn_detection"])
	assert.NotNil(t, in["format"], "the accepted session's input format is kept")
	assert.Empty(t, f.items, "the audio turn is not sent as text")
	require.Len(t, f.audio, 6)
	var got []byte
	for _, a := range f.audio {
		b, err := base64.StdEncoding.DecodeString(a)
		require.NoError(t, err)
		got = append(got, b...)
	}
	assert.Equal(t, pcm, got)
	assert.Equal(t, 1, f.commits)
}

func TestReadPCM16RefusesOtherFormats(t *testing.T) {
	_, err := ReadPCM16(wav(t, 22050, 1, []byte{1, 2}))
	assert.ErrorContains(t, err, "22050 Hz: the Realtime API takes PCM 16-bit mono 24000 Hz")
	assert.ErrorContains(t, err, "sox IN.wav -r 24000 -c 1 -b 16")
	_, err = ReadPCM16(wav(t, SampleRate, 2, []byte{1, 2, 3, 4}))
	assert.ErrorContains(t, err, "2 channel(s)")
	p := filepath.Join(t.TempDir(), "x.wav")
	require.NoError(t, os.WriteFile(p, []byte("not audio"), 0o644))
	_, err = ReadPCM16(p)
	assert.ErrorContains(t, err, "is not a WAV file")
	pcm, err := ReadPCM16("../suites/voice/audio/crisis-explicit.wav")
	require.NoError(t, err, "the committed caller audio is in the API's format")
	assert.Greater(t, len(pcm), SampleRate, "more than half a second of speech")
}
