import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../../platform/http/errors.js';

/**
 * The OpenAI error envelope used by the OpenAI-compatible routes:
 * `{"error":{"message","type","code","param"}}` — the shape the official clients parse. Codes are
 * HridaAI's stable codes; `type` follows the status as OpenAI does.
 */
export function openaiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 504) return 'timeout_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

export function openaiErrorBody(status: number, code: string, message: string, param: string | null = null) {
  return { error: { message, type: openaiType(status), code, param } };
}

/**
 * Installs the envelope for every route of `scope` (an encapsulated plugin), including errors
 * thrown by the authentication hook. Unknown errors are a generic 500 with the request id.
 */
export function useOpenAIErrors(scope: FastifyInstance): void {
  scope.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      const param =
        err.code === 'validation_failed'
          ? ((err.details?.issues as { path: string[] }[] | undefined)?.[0]?.path.join('.') ?? null)
          : null;
      return reply.code(err.status).send(openaiErrorBody(err.status, err.code, err.message, param));
    }
    const fe = err as FastifyError;
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.statusCode === 400 && err instanceof SyntaxError))
      return reply.code(400).send(openaiErrorBody(400, 'invalid_json', 'The request body is not valid JSON'));
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
      return reply.code(400).send(openaiErrorBody(400, 'invalid_json', 'The request body is empty'));
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send(openaiErrorBody(413, 'body_too_large', 'The request body is too large'));
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return reply
        .code(415)
        .send(openaiErrorBody(415, 'unsupported_media_type', 'Send the request body as application/json'));
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
      return reply
        .code(fe.statusCode)
        .send(
          openaiErrorBody(fe.statusCode, 'invalid_request', fe.message.replace(/^FST_[A-Z_]+:\s*/, '').slice(0, 200)),
        );
    req.log.error({ err }, 'unhandled error');
    return reply
      .code(500)
      .send(
        openaiErrorBody(500, 'internal_error', `Internal error; quote the request id ${req.id} to an administrator`),
      );
  });
}
