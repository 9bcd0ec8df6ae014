/*
 * mcu_binary_pack_s8.c - int8 -> packed bits: the sign of each value against the zero point (Sign(0) = +1,
 * bit 1 = -1), 32 channels per uint32 (mcu_binary.h). The int8 -> binary transition. Portable C.
 */
#include "mcu_binary.h"

mcu_status mcu_binary_pack_s8(const mcu_binary_pack_params *params, const int8_t *input, uint32_t *output)
{
    int32_t px, c;

    if (params == NULL || input == NULL || output == NULL) {
        return MCU_ERROR_ARGUMENT;
    }
    {
        const int32_t channels = params->input.c;
        const int32_t words = mcu_packed_words(channels);
        const int32_t pixels = params->input.n * params->input.h * params->input.w;
        const int32_t zp = params->zero_point;
        for (px = 0; px < pixels; px++) {
            const int8_t *x = input + (size_t)px * channels;
            uint32_t *out = output + (size_t)px * words;
            for (c = 0; c < words; c++) {
                out[c] = 0u;
            }
            for (c = 0; c < channels; c++) {
                out[c >> 5] |= (uint32_t)(x[c] < zp) << (c & 31);
            }
        }
    }
    return MCU_OK;
}
