// The broker's clients over grpc-web, and how errors read.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  ConsumerService,
  PublisherService,
  TopicService,
} from "./gen/gostream/v1/gostream_pb";

/** The services the console calls, over one grpc-web transport. */
export interface Broker {
  url: string;
  topics: Client<typeof TopicService>;
  publisher: Client<typeof PublisherService>;
  consumers: Client<typeof ConsumerService>;
}

/** Clients for the broker at `url`, sending `token` as a bearer token when set. */
export function connect(url: string, token: string): Broker {
  const bearer: Interceptor = (next) => (request) => {
    if (token !== "") {
      request.header.set("authorization", `Bearer ${token}`);
    }
    return next(request);
  };
  const transport = createGrpcWebTransport({
    baseUrl: url.replace(/\/+$/, ""),
    interceptors: [bearer],
  });
  return {
    url,
    topics: createClient(TopicService, transport),
    publisher: createClient(PublisherService, transport),
    consumers: createClient(ConsumerService, transport),
  };
}

/** An error as the gRPC code (`ALREADY_EXISTS`) and the broker's message. */
export interface Failure {
  code: string;
  message: string;
}

/** Reads any thrown value as a gRPC code and message. */
export function failure(error: unknown): Failure {
  const e = ConnectError.from(error);
  return { code: codeName(e.code), message: e.rawMessage };
}

/** Whether `error` is the cancellation of a call the console aborted itself. */
export function isCanceled(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}

/** `Code.AlreadyExists` -> `ALREADY_EXISTS`, as gRPC spells it. */
function codeName(code: Code): string {
  const name = Code[code] ?? `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
