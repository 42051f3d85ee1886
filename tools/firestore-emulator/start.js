// Starts the Firestore gRPC emulator on the port given as the first argument and
// prints "READY <port>" once it listens, so a test harness can wait for it.
const { FirestoreServer } = require('@firestore-emulator/server');

const port = Number.parseInt(process.argv[2] || '8080', 10);
const server = new FirestoreServer();
server.start(port).then(
  () => console.log(`READY ${port}`),
  (err) => { console.error(err); process.exit(1); },
);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
