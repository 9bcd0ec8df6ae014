/* The framed serial protocol between mcutool and firmware built with --io uart (host side:
 * mcutool/emulate/frames.py). Every frame, in either direction:
 *
 *   "MCUF"  type (1 byte)  length (uint32, little-endian)  payload (length bytes)  CRC-32 (uint32, LE)
 *
 * The CRC-32 is IEEE 802.3's (zlib.crc32: reflected 0xEDB88320, initial and final XOR 0xFFFFFFFF) over type,
 * length and payload. A receiver finds frames by scanning for the magic, so garbage or a lost byte costs one
 * frame, never the link. Types:
 *   'I'  host -> firmware: every input tensor, concatenated in input order (model.h sizes)
 *   'O'  firmware -> host: every output tensor, concatenated in output order
 *   'T'  firmware -> host: one console line, e.g. a "MCUTOOL <record> key=value ..." report (mcu_report.h)
 *   'X'  firmware -> host: the program ended; payload = int32 exit status (after a fault report: 3)
 */
#ifndef MCU_FRAME_H
#define MCU_FRAME_H

#include <stdint.h>

#define MCU_FRAME_INPUT 'I'
#define MCU_FRAME_OUTPUT 'O'
#define MCU_FRAME_TEXT 'T'
#define MCU_FRAME_EXIT 'X'

typedef struct {
    void *data;
    uint32_t size;
} mcu_span;

#define MCU_FRAME_OK 0
#define MCU_FRAME_BAD_CRC (-1)
#define MCU_FRAME_BAD_LENGTH (-2) /* the frame's length is not the sum of the spans' sizes */
#define MCU_FRAME_BAD_TYPE (-3)

/* Sends one frame whose payload is the spans, in order. */
void mcu_frame_send(uint8_t type, const mcu_span *spans, uint32_t count);
/* Waits for the next frame and stores its payload across the spans. Returns MCU_FRAME_OK, or one of the
 * errors above (the payload is then unusable; the next call resynchronises on the magic). */
int32_t mcu_frame_receive(uint8_t type, const mcu_span *spans, uint32_t count);
uint32_t mcu_crc32_update(uint32_t crc, const uint8_t *bytes, uint32_t n); /* crc starts at 0 */

#endif
