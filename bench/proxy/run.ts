export async function run(_flags: string[]): Promise<void> {
  console.log('the proxy bench is not written yet');
}
