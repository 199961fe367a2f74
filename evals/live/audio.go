package live

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/openai/openai-go/v3"
	oarealtime "github.com/openai/openai-go/v3/realtime"
)

// SampleRate is the Realtime API's PCM16 input rate (audio/pcm, 24 kHz,
// mono, little-endian).
const SampleRate = 24000

// ReadPCM16 reads a WAV file of caller audio and returns its samples,
// checking that it is what the Realtime API takes: PCM 16-bit mono 24 kHz.
func ReadPCM16(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("caller audio: %w", err)
	}
	fix := fmt.Sprintf("convert it with: sox IN.wav -r %d -c 1 -b 16 -e signed-integer %s", SampleRate, path)
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, fmt.Errorf("caller audio %s is not a WAV file; %s", path, fix)
	}
	var pcm []byte
	var format, channels, bits uint16
	var rate uint32
	for off := 12; off+8 <= len(data); {
		id := string(data[off : off+4])
		size := int(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := data[off+8:]
		if size > len(body) {
			size = len(body) // a streamed WAV may carry a placeholder size
		}
		body = body[:size]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("caller audio %s: short fmt chunk; %s", path, fix)
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
		case "data":
			pcm = body
		}
		off += 8 + size + size%2
	}
	switch {
	case format != 1 || bits != 16 || channels != 1 || rate != SampleRate:
		return nil, fmt.Errorf("caller audio %s is format %d, %d-bit, %d channel(s), %d Hz: the Realtime API takes PCM 16-bit mono %d Hz; %s", path, format, bits, channels, rate, SampleRate, fix)
	case len(pcm) == 0:
		return nil, fmt.Errorf("caller audio %s has no samples", path)
	}
	return pcm, nil
}

// chunk is how much audio one input_audio_buffer.append carries (0.25 s,
// 16 kB of base64: well under the API's event size limit).
const chunk = SampleRate / 2

// sendAudio appends the caller's audio to the input buffer and commits it
// (input_audio_buffer.append / commit, the SDK's event types): the model
// hears the caller instead of reading a transcript.
func (cv *Conversation) sendAudio(ctx context.Context, pcm []byte) error {
	if len(pcm) == 0 {
		return errors.New("caller audio: no samples")
	}
	for r := bytes.NewReader(pcm); r.Len() > 0; {
		buf := make([]byte, min(chunk, r.Len()))
		_, _ = r.Read(buf)
		ev := &oarealtime.InputAudioBufferAppendEventParam{EventID: openai.String(cv.eventID()), Audio: base64.StdEncoding.EncodeToString(buf)}
		if err := cv.send(ctx, oarealtime.RealtimeClientEventUnionParam{OfInputAudioBufferAppend: ev}); err != nil {
			return err
		}
	}
	commit := &oarealtime.InputAudioBufferCommitEventParam{EventID: openai.String(cv.eventID())}
	return cv.send(ctx, oarealtime.RealtimeClientEventUnionParam{OfInputAudioBufferCommit: commit})
}
