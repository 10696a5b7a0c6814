import { SetMetadata } from '@nestjs/common';

export const SENSITIVE_RESPONSE = 'admin:sensitive-response';

/**
 * The response carries a secret shown once (a generated client secret). The Idempotency-Key store
 * keeps such a response only encrypted (TokenCipher), so a replay can still return it but the
 * database never holds it in clear.
 */
export const SensitiveResponse = () => SetMetadata(SENSITIVE_RESPONSE, true);
