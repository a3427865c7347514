export function App() {
  return (
    <main>
      <h1>keytally</h1>
      <p>The dashboard is on its way.</p>
    </main>
  );
}
