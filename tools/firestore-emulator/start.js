// Starts the Firestore gRPC emulator on 127.0.0.1 and the port given as the first argument,
// and prints "READY <port>" once it listens, so a harness can wait for it.
// Loopback only: the emulator has no authentication, and the package's own start() binds
// 0.0.0.0, so its gRPC server is bound here instead.
const { FirestoreServer } = require('@firestore-emulator/server');
// The gRPC library the emulator itself loads (a dependency of it, not of this package).
const grpcPath = require.resolve('@grpc/grpc-js', {
  paths: [require.resolve('@firestore-emulator/server')],
});
const { ServerCredentials } = require(grpcPath);

const port = Number.parseInt(process.argv[2] || '8080', 10);
const emulator = new FirestoreServer();
emulator.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`READY ${port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
